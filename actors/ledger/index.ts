export {
  createLedgerDecider,
  createBudgetDecider,
  ledgerDecider,
  budgetDecider,
  reservationStatus,
  type LedgerState,
  type UserLedgerDecider,
  type BudgetDecider,
} from "./decider.js";
export { quotaView, budgetView, type QuotaView, type QuotaViewOptions, type BudgetView } from "./view.js";
export {
  createLedgerMachine,
  headroom,
  DEFAULT_RESERVATION_TTL_MS,
  type LedgerMachine,
  type LedgerMachineOptions,
  type LedgerScope,
} from "./machine.js";
export {
  LedgerCommand,
  ConfigureLedger,
  TopUpLedger,
  ReserveTokens,
  CommitTokens,
  ReleaseTokens,
  ExpireReservations,
  BudgetCommand,
  ConfigureBudget,
  TopUpBudget,
  ReserveBudget,
  CommitBudget,
  ReleaseBudget,
  ExpireBudget,
} from "./commands.js";
export { LedgerContext, OpenReservation, Settlement, initialLedgerContext, settlementOf } from "./state.js";
