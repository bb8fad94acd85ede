import { expect } from "vitest";
import type { ErrorCode } from "../../core/errors.js";
import { fold, type DecidedEvent, type Decider } from "../../actors/decider.js";

/**
 * given / when / then for deciders (STYLE §4, after emmett's DeciderSpecification):
 *
 *   spec(decider).given([events]).when(command).then([events])
 *   spec(decider).given([events]).when(command).thenRejects("CONFLICT")
 *
 * `given` folds the events (validated with the decider's parseEvent, so the fixtures are real
 * stored events); `when` validates the command with parseCommand; `then` compares the decided
 * events exactly and also folds them, so an event the machine cannot apply fails the test.
 */
export interface Then<S> {
  then(expected: DecidedEvent[]): S;
  thenRejects(code: ErrorCode, messagePart?: string): void;
  /** For assertions on the decided events beyond equality. */
  thenEvents(): DecidedEvent[];
}

export function spec<C, E extends DecidedEvent, S>(decider: Decider<C, E, S>) {
  return {
    given(events: DecidedEvent[] = []) {
      const state = fold(decider, events.map((e) => decider.parseEvent(e)));
      return {
        state,
        when(command: unknown): Then<S> {
          const cmd = decider.parseCommand(command);
          const decision = decider.decide(cmd, state);
          return {
            then(expected) {
              if (!decision.ok) throw new Error(`expected events, got rejection ${decision.rejection.code}: ${decision.rejection.message}`);
              expect(decision.events).toEqual(expected);
              return fold(decider, decision.events, state);
            },
            thenRejects(code, messagePart) {
              if (decision.ok) throw new Error(`expected rejection ${code}, got events ${JSON.stringify(decision.events)}`);
              expect(decision.rejection.code).toBe(code);
              if (messagePart !== undefined) expect(decision.rejection.message).toContain(messagePart);
            },
            thenEvents() {
              if (!decision.ok) throw new Error(`expected events, got rejection ${decision.rejection.code}: ${decision.rejection.message}`);
              fold(decider, decision.events, state);
              return decision.events;
            },
          };
        },
      };
    },
  };
}
