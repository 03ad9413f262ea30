/**
 * A shell command run on a pseudo-terminal (script(1)), typed to once: for the tests of what
 * `vmdesc boot` does with a terminal (raw mode, its restoration, the console's size).
 */

/**
 * Runs `command` (sh syntax) under `script -qfec` in `cwd`; once its output contains
 * `when`, writes `keys` to the terminal (as typed: no newline is added). Resolves to
 * everything the terminal showed, when the command has ended.
 */
export async function typeOnTerminal(
  command: string,
  cwd: string,
  when: string,
  keys: string,
): Promise<string> {
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  const decoder = new TextDecoder();
  let out = "";
  let sent = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
    if (!sent && out.includes(when)) {
      sent = true;
      await writer.write(new TextEncoder().encode(keys));
    }
  }
  await writer.close().catch(() => {});
  await child.stderr.cancel();
  await child.status;
  return out;
}
