/**
 * `vmdesc completions bash|zsh|fish`: a shell completion script on stdout.
 *
 * Nothing is listed twice: the commands and their summaries come from the dispatcher's
 * table, each command's flags from its own `--help` (the lines of its Options list:
 * `--name`, `-x, --name`, a value placeholder; `a|b|c` is a closed set of values, a
 * placeholder naming a file completes paths), `explain`'s codes from the code table, and
 * a command's own sub-commands from the `SUBCOMMANDS` its module exports (`ctl`'s
 * actions, after a machine name taken from the runtime directory's sockets).
 * So a flag added to a command's help is completed without touching this file.
 */
import { out, startCommand, usageError } from "./output.ts";
import { CODES } from "../plan/codes.ts";

export const HELP = `Print a shell completion script for vmdesc.

Usage: vmdesc completions bash|zsh|fish

  bash   source it from ~/.bashrc:  source <(vmdesc completions bash)
         or install it: vmdesc completions bash > ~/.local/share/bash-completion/completions/vmdesc
  zsh    put it on $fpath as _vmdesc: vmdesc completions zsh > ~/.zfunc/_vmdesc
         (with fpath+=(~/.zfunc); autoload -U compinit; compinit in ~/.zshrc)
  fish   vmdesc completions fish > ~/.config/fish/completions/vmdesc.fish

It completes commands, each command's flags and their values (formats, boot
protocols' hole strategies, ...), .vmdesc files and folders, and diagnostic codes
after 'explain'.

Options:
  -h, --help   show this help
`;

export const SHELLS = ["bash", "zsh", "fish"] as const;

/** A command's flags plus the global ones every command takes (--no-color), once each. */
function commandFlags(c: CommandInfo, spec: Spec): FlagInfo[] {
  const everywhere = spec.global.filter((g) => g.long === "no-color");
  return [...c.flags, ...everywhere.filter((g) => !c.flags.some((f) => f.long === g.long))];
}

/** One flag of a command, as its --help lists it. */
export interface FlagInfo {
  long: string;
  short?: string;
  /** The value placeholder (`NAME`, `text|json`), absent for a boolean flag. */
  arg?: string;
  /** A closed set of values (`--format text|json`, `--hole-strategy S  trap | shadow: …`). */
  choices?: string[];
  /** The value is a path. */
  path?: boolean;
  doc: string;
}

/**
 * What a command's positional arguments are. "machine-then-subcommand": a running
 * machine's name (a socket in the runtime directory) or a path, then one of the
 * command's `subcommands`.
 */
export type Positional =
  | "vmdesc-files"
  | "codes"
  | "shells"
  | "commands"
  | "machine-then-subcommand"
  | "none";

export interface CommandInfo {
  name: string;
  summary: string;
  flags: FlagInfo[];
  positional: Positional;
  /** The command's own sub-commands (its module's SUBCOMMANDS). */
  subcommands?: string[];
}

export interface Spec {
  global: FlagInfo[];
  commands: CommandInfo[];
  codes: string[];
}

const POSITIONAL: Record<string, Positional> = {
  explain: "codes",
  completions: "shells",
  lsp: "none",
  ctl: "machine-then-subcommand",
  ps: "none",
};

/** A flag's description cut to what fits a completion menu: its first clause. */
function brief(doc: string): string {
  const plain = doc.replace(/\s+/g, " ").replace(/ ?\([^)]*\)/g, "").trim();
  const clause = plain.split(/[;.] /)[0].replace(/[.;:]$/, "");
  return clause.length > 60 ? clause.slice(0, 57).trimEnd() + "..." : clause;
}

/** The flags an Options list of a --help text declares. */
export function flagsFromHelp(help: string): FlagInfo[] {
  const flags: FlagInfo[] = [];
  const lines = help.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {2}(?:-(\w), )?--([a-z][\w-]*)(?: ([^\s]+))?(?: {2,}(.*))?$/.exec(lines[i]);
    if (!m) continue;
    const [, short, long, arg, rest] = m;
    let doc = (rest ?? "").trim();
    // A wrapped description continues on deeper-indented lines (or starts on the next one).
    while (i + 1 < lines.length && /^ {6,}\S/.test(lines[i + 1])) doc += " " + lines[++i].trim();
    const flag: FlagInfo = { long, doc: brief(doc) };
    if (short) flag.short = short;
    if (arg) {
      flag.arg = arg;
      if (/^[a-z0-9_-]+(\|[a-z0-9_-]+)+$/.test(arg)) flag.choices = arg.split("|");
      else {
        const named = /^([a-z0-9_-]+(?: \| [a-z0-9_-]+)+):/.exec(doc);
        if (named) flag.choices = named[1].split(" | ");
        else if (/PATH|FILE|\.svg$|\.json$/.test(arg)) flag.path = true;
      }
    }
    flags.push(flag);
  }
  return flags;
}

/** Everything the scripts complete, from the commands' own tables and help texts. */
export async function completionSpec(): Promise<Spec> {
  const { COMMANDS, HELP: TOP } = await import("./vmdesc.ts");
  const commands: CommandInfo[] = [];
  for (const [name, c] of Object.entries(COMMANDS)) {
    let mod: { HELP: string; SUBCOMMANDS?: readonly string[] };
    try {
      mod = await c.load();
    } catch {
      continue; // a command this build does not have (see the dispatcher)
    }
    commands.push({
      name,
      summary: c.summary,
      flags: flagsFromHelp(mod.HELP),
      positional: POSITIONAL[name] ?? "vmdesc-files",
      ...(mod.SUBCOMMANDS ? { subcommands: [...mod.SUBCOMMANDS] } : {}),
    });
  }
  commands.push({
    name: "help",
    summary: "show help for a command",
    flags: [],
    positional: "commands",
  });
  return { global: flagsFromHelp(TOP), commands, codes: Object.keys(CODES) };
}

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand("completions", args, {}, HELP);
  if (typeof parsed === "number") return parsed;
  const shell = parsed.positionals[0];
  if (parsed.positionals.length !== 1 || !(SHELLS as readonly string[]).includes(shell)) {
    return usageError(
      {
        message: shell === undefined
          ? "which shell?"
          : parsed.positionals.length > 1
          ? "completions takes one shell"
          : `no completions for '${shell}'`,
        hint: `vmdesc completions ${SHELLS.join("|")}`,
      },
      "completions",
    );
  }
  const spec = await completionSpec();
  out(shell === "bash" ? bashScript(spec) : shell === "zsh" ? zshScript(spec) : fishScript(spec));
  return 0;
}

// ── bash ─────────────────────────────────────────────────────────────────

const words = (list: string[]) => list.join(" ");
const flagWords = (flags: FlagInfo[]) =>
  flags.flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);

export function bashScript(spec: Spec): string {
  const names = spec.commands.map((c) => c.name);
  const perCommand = spec.commands.map((c) => {
    const valueCases = commandFlags(c, spec).filter((f) => f.arg).map((f) => {
      const pattern = [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])].join("|");
      const action = f.choices
        ? `COMPREPLY=($(compgen -W "${words(f.choices)}" -- "$cur"))`
        : f.path
        ? "_vmdesc_paths"
        : ":";
      return `        ${pattern}) ${action}; return ;;`;
    });
    const positional = c.positional === "vmdesc-files"
      ? "_vmdesc_vmdesc_files"
      : c.positional === "codes"
      ? `COMPREPLY=($(compgen -W "${words(spec.codes)}" -- "$cur"))`
      : c.positional === "shells"
      ? `COMPREPLY=($(compgen -W "${words([...SHELLS])}" -- "$cur"))`
      : c.positional === "commands"
      ? `COMPREPLY=($(compgen -W "${words(names)}" -- "$cur"))`
      : c.positional === "machine-then-subcommand"
      ? `_vmdesc_machine_then "${words(c.subcommands ?? [])}" "${
        words(flagWords(commandFlags(c, spec).filter((f) => f.arg)))
      }"`
      : ":";
    return `    ${c.name})
      case $prev in
${valueCases.join("\n")}
      esac
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${
      words(flagWords([...c.flags, ...spec.global.filter((g) => g.long === "no-color")]))
    }" -- "$cur"))
      else
        ${positional}
      fi
      ;;`;
  });
  return `# bash completion for vmdesc (generated by 'vmdesc completions bash')
# Use: source <(vmdesc completions bash)

_vmdesc_paths() {
  local IFS=$'\\n'
  COMPREPLY=($(compgen -f -- "$cur"))
  compopt -o filenames 2>/dev/null
}

_vmdesc_vmdesc_files() {
  local IFS=$'\\n'
  COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -X '!*.vmdesc' -- "$cur"))
  compopt -o filenames 2>/dev/null
}

# Running machines: the sockets in the runtime directory ('vmdesc boot --api-sock NAME').
_vmdesc_machine_names() {
  local dir f
  if [[ $XDG_RUNTIME_DIR == /* ]]; then dir=$XDG_RUNTIME_DIR/vmdesc; else dir=/tmp/vmdesc-$UID; fi
  for f in "$dir"/*.sock; do
    [[ -S $f ]] && f=\${f##*/} && printf '%s\\n' "\${f%.sock}"
  done
}

# A machine (name or socket path), then one of the sub-commands in $1; $2 lists the
# flags that take a value (their value is not a positional).
_vmdesc_machine_then() {
  local n=0 j
  for ((j = i + 1; j < COMP_CWORD; j++)); do
    case " $2 " in *" \${COMP_WORDS[j-1]} "*) continue ;; esac
    [[ \${COMP_WORDS[j]} == -* ]] || ((n++))
  done
  if ((n == 0)); then
    local IFS=$'\\n'
    COMPREPLY=($(compgen -W "$(_vmdesc_machine_names)" -- "$cur") $(compgen -f -- "$cur"))
  elif ((n == 1)); then
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
  fi
}

_vmdesc() {
  local cur prev cmd i
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  # --flag=value: bash splits the word at '=' (COMP_WORDBREAKS): "--flag" "=" "value".
  if [[ $cur == = ]]; then
    cur=
  elif [[ $prev == = ]]; then
    prev=\${COMP_WORDS[COMP_CWORD-2]}
  fi
  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      -*) ;;
      *) cmd=\${COMP_WORDS[i]}; break ;;
    esac
  done
  COMPREPLY=()
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${words(flagWords(spec.global))}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${words(names)}" -- "$cur"))
    fi
    return
  fi
  case $cmd in
${perCommand.join("\n")}
  esac
}

complete -F _vmdesc vmdesc
`;
}

// ── zsh ──────────────────────────────────────────────────────────────────

/** Text inside a zsh `_arguments` spec: no brackets, colons or quotes. */
const zq = (s: string) => s.replace(/[[\]:'\\]/g, " ").replace(/\s+/g, " ").trim();

function zshFlag(f: FlagInfo): string[] {
  const doc = zq(f.doc);
  const value = !f.arg
    ? ""
    : f.choices
    ? `:${zq(f.arg)}:(${f.choices.join(" ")})`
    : f.path
    ? `:${zq(f.arg)}:_files`
    : `:${zq(f.arg)}: `;
  const eq = f.arg ? "=" : "";
  const names = [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])];
  return names.map((n) => `'${n}${n.startsWith("--") ? eq : ""}[${doc}]${value}'`);
}

export function zshScript(spec: Spec): string {
  const commands = spec.commands.map((c) => `    '${c.name}:${zq(c.summary)}'`);
  const cases = spec.commands.map((c) => {
    const positional = c.positional === "vmdesc-files"
      ? `'*:file:_files -g "*.vmdesc(-.)"'`
      : c.positional === "codes"
      ? `'1:code:(${spec.codes.join(" ")})'`
      : c.positional === "shells"
      ? `'1:shell:(${SHELLS.join(" ")})'`
      : c.positional === "commands"
      ? `'1:command:(${spec.commands.map((x) => x.name).join(" ")})'`
      : c.positional === "machine-then-subcommand"
      ? `'1:machine:_vmdesc_machines' '2:${c.name} command:(${(c.subcommands ?? []).join(" ")})'`
      : "";
    const specs = [
      ...commandFlags(c, spec).flatMap(zshFlag),
      ...(positional ? [positional] : []),
    ];
    return `        ${c.name})\n          _arguments -s \\\n            ${
      specs.join(" \\\n            ")
    }\n          ;;`;
  });
  return `#compdef vmdesc
# zsh completion for vmdesc (generated by 'vmdesc completions zsh')
# Use: vmdesc completions zsh > ~/.zfunc/_vmdesc, with fpath+=(~/.zfunc) before compinit.

# Running machines: the sockets in the runtime directory ('vmdesc boot --api-sock NAME').
_vmdesc_machines() {
  local dir
  if [[ $XDG_RUNTIME_DIR == /* ]]; then dir=$XDG_RUNTIME_DIR/vmdesc; else dir=/tmp/vmdesc-$UID; fi
  local -a names
  names=($dir/*.sock(N:t:r))
  _alternative "machines:machine:(\${names[*]})" 'sockets:socket:_files'
}

_vmdesc() {
  local curcontext="$curcontext" state line
  local -a commands
  commands=(
${commands.join("\n")}
  )
  _arguments -C \\
    ${spec.global.flatMap(zshFlag).join(" \\\n    ")} \\
    '1: :->command' \\
    '*:: :->args' && return 0
  case $state in
    command)
      _describe -t commands 'vmdesc command' commands
      ;;
    args)
      case $words[1] in
${cases.join("\n")}
      esac
      ;;
  esac
}

if [ "$funcstack[1]" = "_vmdesc" ]; then
  _vmdesc "$@"
else
  compdef _vmdesc vmdesc
fi
`;
}

// ── fish ─────────────────────────────────────────────────────────────────

const fq = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

export function fishScript(spec: Spec): string {
  const names = spec.commands.map((c) => c.name).join(" ");
  const lines = [
    "# fish completion for vmdesc (generated by 'vmdesc completions fish')",
    "# Use: vmdesc completions fish > ~/.config/fish/completions/vmdesc.fish",
    "complete -c vmdesc -f",
    "# Running machines: the sockets in the runtime directory ('vmdesc boot --api-sock NAME').",
    "function __vmdesc_machines",
    "    set -l dir /tmp/vmdesc-(id -u)",
    "    string match -q '/*' -- \"$XDG_RUNTIME_DIR\"; and set dir $XDG_RUNTIME_DIR/vmdesc",
    "    for f in $dir/*.sock",
    "        test -S $f; and string replace -r '\\.sock$' '' -- (path basename $f)",
    "    end",
    "end",
    "# How many arguments follow the command on the line (flags and their values aside).",
    "function __vmdesc_args_after_command",
    "    set -l words (commandline -opc)",
    "    set -l n 0",
    "    set -l skip 0",
    "    for w in $words[3..-1]",
    "        if test $skip -eq 1",
    "            set skip 0",
    "        else if string match -q -- '--format' $w",
    "            set skip 1",
    "        else if not string match -q -- '-*' $w",
    "            set n (math $n + 1)",
    "        end",
    "    end",
    "    echo $n",
    "end",
  ];
  const flagLine = (cond: string, f: FlagInfo) => {
    let l = `complete -c vmdesc -n ${fq(cond)} -l ${f.long}`;
    if (f.short) l += ` -s ${f.short}`;
    if (f.choices) l += ` -x -a ${fq(f.choices.join(" "))}`;
    else if (f.path) l += " -r -F";
    else if (f.arg) l += " -x";
    return l + ` -d ${fq(f.doc)}`;
  };
  for (const g of spec.global) {
    const cond = g.long === "no-color" ? "true" : "__fish_use_subcommand";
    lines.push(flagLine(cond, g));
  }
  for (const c of spec.commands) {
    lines.push(
      `complete -c vmdesc -n '__fish_use_subcommand' -a ${c.name} -d ${fq(c.summary)}`,
    );
    const cond = `__fish_seen_subcommand_from ${c.name}`;
    for (const f of c.flags) lines.push(flagLine(cond, f));
    const pos = c.positional === "vmdesc-files"
      ? "-a '(__fish_complete_suffix .vmdesc)'"
      : c.positional === "codes"
      ? `-a ${fq(spec.codes.join(" "))}`
      : c.positional === "shells"
      ? `-a ${fq(SHELLS.join(" "))}`
      : c.positional === "commands"
      ? `-a ${fq(names)}`
      : "";
    if (pos) lines.push(`complete -c vmdesc -n ${fq(cond)} ${pos}`);
    if (c.positional === "machine-then-subcommand") {
      const at = (n: number) => `${cond}; and test (__vmdesc_args_after_command) -eq ${n}`;
      lines.push(`complete -c vmdesc -n ${fq(at(0))} -F -a '(__vmdesc_machines)'`);
      lines.push(`complete -c vmdesc -n ${fq(at(1))} -a ${fq((c.subcommands ?? []).join(" "))}`);
    }
  }
  return lines.join("\n") + "\n";
}
