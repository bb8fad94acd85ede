export { ClaimsSchema, TIERS, principalFromClaims, isAdmin, seesWholeTenant, type Claims, type Principal, type Tier } from "./principal.js";
export {
  bearerToken,
  cookieToken,
  queryToken,
  handshakeToken,
  findToken,
  parseCookies,
  TOKEN_COOKIES,
  type TokenCarriers,
} from "./sources.js";
export { createAuthenticator, authenticatorFromConfig, type Authenticator, type AuthKeys } from "./verifier.js";
export { signToken, type TokenClaimsInput, type SignOptions } from "./sign.js";
export { resolveJwtSecret, loadOrCreateDevSecret, devSecretPath, isLoopbackHost, DEV_SECRET_FILE } from "./dev-secret.js";
