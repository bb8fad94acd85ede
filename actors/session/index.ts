export { createSessionDecider, sessionDecider, sessionStatus, type SessionDecider, type SessionState } from "./decider.js";
export { createSessionMachine, type SessionMachine } from "./machine.js";
export { SessionCommand, OpenSession, ResumeSession, CloseSession, UpgradeTier } from "./commands.js";
export { SessionContext, SESSION_STATES, initialSessionContext, type SessionStatus } from "./state.js";
