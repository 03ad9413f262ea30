/**
 * The control API of a running machine: the server (HTTP + JSON on a Unix socket), where
 * sockets live, and a client. docs/api/openapi.json describes the protocol.
 */
export { type ApiServer, type ApiServerOptions, BODY_LIMIT, serveApi } from "./server.ts";
export { claimSocketPath, ensureRuntimeDir, isBareName, runtimeDir, socketPath } from "./socket.ts";
export { apiEvents, apiRequest, type ApiResponse, ApiUnreachable } from "./client.ts";

import { ensureRuntimeDir, isBareName, socketPath } from "./socket.ts";

/**
 * The path `name` stands for, ready to be claimed: a bare name's runtime directory is
 * created (0700) first.
 */
export function prepareSocketPath(name: string): string {
  if (isBareName(name)) ensureRuntimeDir();
  return socketPath(name);
}
