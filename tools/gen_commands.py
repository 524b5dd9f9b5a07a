#!/usr/bin/env python3
"""Generates commands/commands.inc from a live redis-server.

    redis-server --> COMMAND, COMMAND DOCS --> CommandInfo arrays (sorted) --+--> commands.inc
                 --> COMMAND GETKEYS on argument lists built from DOCS ------+

Usage (from the repository root):

    tools/gen_commands.py                      # start a throwaway redis-server, rewrite the .inc
    tools/gen_commands.py --server HOST:PORT   # use a running server instead (read-only use)
    tools/gen_commands.py --check              # exit 1 if the checked-in .inc is out of date

Only the Python standard library is used (RESP2 over a plain socket), so any python3 works.

What it does, and why:
  * Every command and subcommand from COMMAND becomes one CommandInfo: arity, flags, key specs,
    and a dense id (commands, then subcommands) for tables indexed by command, such as the
    per-command counters.
  * Redis 7 key specs are reduced to corral's KeySpec: begin_search index/keyword combined with
    find_keys range/keynum. A spec the translation cannot express makes the script fail, unless
    the command is in SPECIAL_KEYS (then command_table.cc has a hand-written extractor). This
    way a new Redis version cannot silently produce a wrong table.
  * Key specs flagged "not_key" (shard channels of SPUBLISH/SSUBSCRIBE/SUNSUBSCRIBE) are dropped:
    COMMAND GETKEYS does not report them either, and a channel is not a cached key.
  * corral's own flags (transaction, connection state, script) come from the lists below.
  * Self-check: argument lists are generated from COMMAND DOCS (minimal, alternating and full
    forms of every command, every `oneof` branch), and the server's COMMAND GETKEYS answer for each
    is recorded in the .inc. command_table_test.cc replays them against extractKeys(), so the
    C++ key extraction is cross-checked against real Redis without a server at test time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "commands", "commands.inc")

# Redis command flags that corral keeps, mapped to CommandFlag enumerators.
REDIS_FLAGS = {
    "readonly": "kRead",
    "write": "kWrite",
    "admin": "kAdmin",
    "blocking": "kBlocking",
    "pubsub": "kPubSub",
    "noscript": "kNoScript",
    "loading": "kLoading",
    "stale": "kStale",
    "fast": "kFast",
    "movablekeys": "kMovableKeys",
    "denyoom": "kDenyOom",
}
# Output order of the flags in the generated expressions (the enum's bit order).
FLAG_ORDER = [
    "kRead", "kWrite", "kAdmin", "kBlocking", "kPubSub", "kTransaction", "kNoKey", "kConnState",
    "kNoScript", "kLoading", "kStale", "kFast", "kMovableKeys", "kScript", "kDenyOom",
]

TRANSACTION = {"multi", "exec", "discard", "watch", "unwatch"}
SCRIPT = {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}
# Commands that create or change per-connection state, so a proxy cannot multiplex them blindly.
CONN_STATE = {
    "select", "hello", "auth", "reset", "quit", "monitor",
    "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
    "readonly", "readwrite", "asking", "sync", "psync", "replconf",
    "client|tracking", "client|reply", "client|caching", "client|no-evict", "client|setname",
}
CONN_STATE_OPTIONAL = {"client|no-touch"}  # Redis 7.2+; flagged when the server has it.
# WAIT parks the connection until replicas acknowledge or the timeout fires, like BLPOP, but
# Redis 7.0 does not flag it "blocking". corral routes on kBlocking, so it is added here.
EXTRA_BLOCKING = {"wait"}

# Commands whose keys cannot be described by KeySpec; command_table.cc extracts them by hand.
# The value says what the Redis key specs are, so a change in a new version is noticed.
SPECIAL_KEYS = {
    "sort": "index 1 + unknown BY/GET patterns + unknown STORE destination",
    "sort_ro": "index 1 + unknown BY/GET patterns (not keys)",
    "migrate": "index 3, or the args after KEYS when arg 3 is empty",
    "georadius": "index 1 + optional STORE key + optional STOREDIST key (three specs)",
    "georadiusbymember": "index 1 + optional STORE key + optional STOREDIST key (three specs)",
}

MAX_VARIANTS_PER_COMMAND = 8


# --------------------------------------------------------------------------------------------
# A minimal RESP2 client.

class RespError(Exception):
    pass


class Resp:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def call(self, *args: str):
        """Sends one command; returns the reply, or a RespError instance for an error reply."""
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError("unexpected RESP type %r" % kind)


def pairs(flat: list) -> dict:
    return dict(zip(flat[0::2], flat[1::2]))


# --------------------------------------------------------------------------------------------
# Server management.

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """redis-server on a free local port, no persistence, in a temp dir; stopped on exit."""

    def __init__(self, binary: str):
        self.binary = binary
        self.proc = None
        self.dir = None
        self.port = 0

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="gen_commands.")
        for _ in range(5):  # the port may be taken between free_port() and bind
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    c = Resp("127.0.0.1", self.port, timeout=1)
                    ok = c.call("PING") == "PONG"
                    c.close()
                    if ok:
                        return self
                except OSError:
                    time.sleep(0.05)
            self._stop()
        raise RuntimeError("could not start %s" % self.binary)

    def _stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *exc):
        self._stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# COMMAND -> CommandInfo.

class GenError(Exception):
    pass


def translate_spec(name: str, spec: dict) -> dict | None:
    """One Redis key spec -> KeySpec fields, or None when KeySpec cannot express it."""
    bs, fk = pairs(spec["begin_search"]), pairs(spec["find_keys"])
    bs_type, fk_type = bs["type"], fk["type"]
    bss, fks = pairs(bs["spec"]), pairs(fk["spec"])
    if bs_type == "index" and fk_type == "range":
        if fks["limit"] != 0:
            return None
        first, lastkey = bss["index"], fks["lastkey"]
        last = first + lastkey if lastkey >= 0 else lastkey
        return {"search": "kRange", "first": first, "last": last, "step": fks["keystep"]}
    if bs_type == "index" and fk_type == "keynum":
        numkeys_at = bss["index"] + fks["keynumidx"]
        return {"search": "kKeynum", "first": numkeys_at, "step": fks["keystep"],
                "key_offset": fks["firstkey"] - fks["keynumidx"]}
    if bs_type == "keyword" and fk_type == "range":
        if bss["startfrom"] <= 0:
            return None  # backwards search (MIGRATE KEYS): not needed outside SPECIAL_KEYS
        return {"search": "kKeyword", "keyword": bss["keyword"],
                "keyword_start_from": bss["startfrom"], "last": fks["lastkey"],
                "step": fks["keystep"], "limit": fks["limit"]}
    return None


def build_entry(raw: list) -> dict:
    name, arity, rflags = raw[0], raw[1], raw[2]
    key_specs = [pairs(k) for k in raw[8]] if len(raw) > 8 else []
    flags = {REDIS_FLAGS[f] for f in rflags if f in REDIS_FLAGS}
    specs = []
    if name in SPECIAL_KEYS:
        if not key_specs:
            raise GenError("%s: expected key specs for a SPECIAL_KEYS command" % name)
        specs = [{"search": "kSpecial"}]
    else:
        for ks in key_specs:
            if "not_key" in ks["flags"]:
                continue
            t = translate_spec(name, ks)
            if t is None:
                raise GenError("%s: key spec %r cannot be expressed; add a hand-written "
                               "extractor and list it in SPECIAL_KEYS" % (name, ks))
            specs.append(t)
        if len(specs) > 2:
            raise GenError("%s: %d key specs, CommandInfo holds 2" % (name, len(specs)))
    if not specs:
        flags.add("kNoKey")
    if name in TRANSACTION:
        flags.add("kTransaction")
    if name in SCRIPT:
        flags.add("kScript")
    if name in CONN_STATE or name in CONN_STATE_OPTIONAL:
        flags.add("kConnState")
    if name in EXTRA_BLOCKING:
        flags.add("kBlocking")
    subs = sorted((build_entry(s) for s in (raw[9] if len(raw) > 9 else [])),
                  key=lambda e: e["name"])
    return {"name": name, "arity": arity, "flags": flags, "specs": specs, "subs": subs}


# --------------------------------------------------------------------------------------------
# COMMAND DOCS -> argument lists for the COMMAND GETKEYS self-check.

class ArgGen:
    """Builds one argument list from a DOCS argument tree.

    mode: "min" (required args only, one of each multiple), "alt0"/"alt1" (every other optional
    argument), "full" (every optional, two of each multiple). branch picks the `oneof` child.
    Keys are named key1, key2, ... and nothing else starts with "key", so the server's answer
    (key names) maps back to argument indexes unambiguously.
    """

    def __init__(self, mode: str, branch: int):
        self.mode, self.branch = mode, branch
        self.nkey = self.nval = 0
        self.opt_counter = 0

    def include_optional(self) -> bool:
        if self.mode == "min":
            return False
        if self.mode == "full":
            return True
        self.opt_counter += 1
        return self.opt_counter % 2 == (0 if self.mode == "alt0" else 1)

    def reps(self) -> int:
        return 1 if self.mode == "min" else 2

    def value(self, a: dict) -> list[str]:
        t = a["type"]
        if t == "key":
            self.nkey += 1
            return ["key%d" % self.nkey]
        self.nval += 1
        if t == "pure-token":
            return [a["token"]]
        if t == "integer":
            return ["%d" % self.nval]
        if t == "double":
            return ["%d.5" % self.nval]
        if t == "unix-time":
            return ["1700000000"]
        if t == "pattern":
            return ["pat%d*" % self.nval]
        if t == "string":
            return ["str%d" % self.nval]
        if t == "oneof":
            children = [pairs(c) for c in a["arguments"]]
            return self.arg(children[self.branch % len(children)])
        if t == "block":
            return self.args([pairs(c) for c in a["arguments"]])
        raise GenError("unknown argument type %r" % t)

    def arg(self, a: dict) -> list[str]:
        flags = a.get("flags", [])
        if "optional" in flags and not self.include_optional():
            return []
        n = self.reps() if "multiple" in flags else 1
        token = a.get("token") if a["type"] != "pure-token" else None
        out = []
        for i in range(n):
            if token is not None and (i == 0 or "multiple_token" in flags):
                out.append(token)
            out.extend(self.value(a))
        return out

    def args(self, args: list[dict]) -> list[str]:
        out = []
        i = 0
        while i < len(args):
            a = args[i]
            if a["name"] == "numkeys" and a["type"] == "integer" and i + 1 < len(args):
                # numkeys must match the key list that follows it.
                before = self.nkey
                rest = self.arg(args[i + 1])
                out.append("%d" % (self.nkey - before))
                out.extend(rest)
                i += 2
                continue
            out.extend(self.arg(a))
            i += 1
        return out


def max_oneof(args: list[dict]) -> int:
    m = 1
    for a in args:
        if a["type"] == "oneof":
            m = max(m, len(a["arguments"]))
        if "arguments" in a:
            m = max(m, max_oneof([pairs(c) for c in a["arguments"]]))
    return m


def docs_map(flat: list) -> dict:
    out = {}
    for i in range(0, len(flat), 2):
        d = pairs(flat[i + 1])
        out[flat[i]] = d
        if "subcommands" in d:
            out.update(docs_map(d["subcommands"]))
    return out


def argument_lists(name: str, doc: dict) -> list[list[str]]:
    prefix = name.split("|")
    args = [pairs(a) for a in doc.get("arguments", [])]
    lists = set()
    for branch in range(min(max_oneof(args), 4)):
        for mode in ("min", "alt0", "alt1", "full"):
            lists.add(tuple(prefix + ArgGen(mode, branch).args(args)))
    return [list(t) for t in sorted(lists)][:MAX_VARIANTS_PER_COMMAND]


def getkeys(conn: Resp, argv: list[str]) -> str | None:
    """Server's answer as the .inc encodes it: key indexes, '!' invalid, '#' wrong arity.

    None when the server cannot be asked: COMMAND GETKEYS needs at least one argument after the
    command name, so PING, MULTI, ... alone are not recorded.
    """
    if len(argv) < 2:
        return None
    reply = conn.call("COMMAND", "GETKEYS", *argv)
    if isinstance(reply, RespError):
        msg = str(reply)
        if "has no key arguments" in msg:
            return ""
        if "Invalid number of arguments" in msg:
            return "#"
        if "Invalid arguments" in msg:
            return "!"
        raise GenError("COMMAND GETKEYS %s: %s" % (" ".join(argv), msg))
    idx = []
    for k in reply:
        if k == "":  # MIGRATE's empty key placeholder is the only empty argument we generate
            idx.append(argv.index(""))
        elif argv.count(k) != 1:
            raise GenError("%s: key %r not unique in %r" % (argv[0], k, argv))
        else:
            idx.append(argv.index(k))
    return " ".join(str(i) for i in idx)


# --------------------------------------------------------------------------------------------
# Output.

def cpp_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ident(name: str) -> str:
    return "k" + "".join(p.capitalize() for p in re.split(r"[^a-z0-9]+", name) if p) + \
        "Subcommands"


def flags_expr(flags: set) -> str:
    ordered = [f for f in FLAG_ORDER if f in flags]
    return " | ".join(ordered) if ordered else "0"


def spec_expr(s: dict) -> str:
    parts = [".search = KeySearch::%s" % s["search"]]
    if s["search"] == "kRange":
        parts += [".first = %d" % s["first"], ".last = %d" % s["last"], ".step = %d" % s["step"]]
    elif s["search"] == "kKeynum":
        parts += [".first = %d" % s["first"], ".step = %d" % s["step"],
                  ".key_offset = %d" % s["key_offset"]]
    elif s["search"] == "kKeyword":
        parts += [".last = %d" % s["last"], ".step = %d" % s["step"],
                  ".keyword = %s" % cpp_string(s["keyword"]),
                  ".keyword_start_from = %d" % s["keyword_start_from"],
                  ".limit = %d" % s["limit"]]
    return "{" + ", ".join(parts) + "}"


def summary_comment(e: dict, docs: dict) -> str:
    d = docs.get(e["name"], {})
    text = " ".join(str(d.get("summary", "")).split()).rstrip("\\")
    if len(text) > 80:
        text = text[:77].rstrip() + "..."
    return "// %s: %s" % (e["name"].upper(), text) if text else "// %s" % e["name"].upper()


def command_ids(entries: list) -> dict:
    """name -> CommandInfo::id: top-level commands in table order, then every subcommand in table
    order (container by container), so the ids are dense and a subcommand's id follows from the
    order command_table.cc walks the table (it checks this at compile time)."""
    ids = {e["name"]: i for i, e in enumerate(entries)}
    for e in entries:
        for s in e["subs"]:
            ids[s["name"]] = len(ids)
    return ids


def entry_lines(e: dict, docs: dict, ids: dict, indent: str) -> list[str]:
    lines = [indent + summary_comment(e, docs)]
    head = "{.name = %s, .arity = %d, .flags = %s" % (cpp_string(e["name"]), e["arity"],
                                                      flags_expr(e["flags"]))
    rest = []
    if e["specs"]:
        rest.append(".keys = {%s}" % ", ".join(spec_expr(s) for s in e["specs"]))
        rest.append(".nkeyspecs = %d" % len(e["specs"]))
    if e["subs"]:
        rest.append(".subcommands = %s" % ident(e["name"]))
        rest.append(".nsubcommands = %d" % len(e["subs"]))
    # Last, as it is declared last (designated initializers follow declaration order).
    if not rest:
        lines.append(indent + head + ", .id = %d}," % ids[e["name"]])
        return lines
    rest.append(".id = %d" % ids[e["name"]])
    lines.append(indent + head + ",")
    for i, r in enumerate(rest):
        lines.append(indent + " " + r + ("}," if i == len(rest) - 1 else ","))
    return lines


def render(version: str, count: int, entries: list, docs: dict, vectors: list) -> str:
    nsubs = sum(len(e["subs"]) for e in entries)
    out = [
        "// generated by tools/gen_commands.py from redis-server %s; do not edit." % version,
        "//",
        "// Regenerate with /usr/bin/python3 tools/gen_commands.py (see commands/README.md).",
        "// Sections: the counts (when no section is asked for; included by command_table.h),",
        "// CORRAL_COMMANDS_TABLE (the CommandInfo arrays, included by command_table.cc) and",
        "// CORRAL_COMMANDS_GETKEYS_VECTORS (COMMAND GETKEYS answers of that server, replayed by",
        "// command_table_test.cc). All expect namespace corral::commands to be open.",
        "// clang-format off",
        "",
        "#if !defined(CORRAL_COMMANDS_TABLE) && !defined(CORRAL_COMMANDS_GETKEYS_VECTORS)",
        "",
        "inline constexpr std::string_view kRedisVersion = %s;" % cpp_string(version),
        "inline constexpr size_t kRedisCommandCount = %d;  // COMMAND COUNT" % count,
        "inline constexpr size_t kRedisSubcommandCount = %d;" % nsubs,
        "",
        "#endif",
        "",
        "#if defined(CORRAL_COMMANDS_TABLE)",
        "",
    ]
    ids = command_ids(entries)
    for e in entries:
        if not e["subs"]:
            continue
        out.append("inline constexpr CommandInfo %s[] = {" % ident(e["name"]))
        for s in e["subs"]:
            out.extend(entry_lines(s, docs, ids, "    "))
        out.append("};")
        out.append("")
    out.append("inline constexpr CommandInfo kCommands[] = {")
    for e in entries:
        out.extend(entry_lines(e, docs, ids, "    "))
    out.append("};")
    out.append("")
    out.append("#endif  // CORRAL_COMMANDS_TABLE")
    out.append("")
    out += [
        "#if defined(CORRAL_COMMANDS_GETKEYS_VECTORS)",
        "",
        "// One COMMAND GETKEYS call: the argument list (joined by '|') and the server's answer:",
        "// key indexes separated by spaces, \"\" for no keys, \"!\" for invalid arguments, \"#\" for",
        "// a wrong number of arguments.",
        "struct GetKeysVector {",
        "  std::string_view args;",
        "  std::string_view keys;",
        "};",
        "",
        "inline constexpr GetKeysVector kGetKeysVectors[] = {",
    ]
    for argv, keys in vectors:
        out.append("    {%s, %s}," % (cpp_string("|".join(argv)), cpp_string(keys)))
    out += ["};", "", "#endif  // CORRAL_COMMANDS_GETKEYS_VECTORS", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------

def generate(conn: Resp) -> tuple[str, str]:
    info = conn.call("INFO", "server")
    m = re.search(r"redis_version:(\S+)", info)
    if not m:
        raise GenError("no redis_version in INFO")
    version = m.group(1)
    count = conn.call("COMMAND", "COUNT")
    raw = conn.call("COMMAND")
    docs = docs_map(conn.call("COMMAND", "DOCS"))
    entries = sorted((build_entry(c) for c in raw), key=lambda e: e["name"])
    if len(entries) != count:
        raise GenError("COMMAND returned %d commands, COMMAND COUNT says %d" %
                       (len(entries), count))
    names = {e["name"] for e in entries} | {s["name"] for e in entries for s in e["subs"]}
    for required in sorted(CONN_STATE | TRANSACTION | SCRIPT | EXTRA_BLOCKING |
                           set(SPECIAL_KEYS)):
        if required not in names:
            raise GenError("command %s listed in gen_commands.py is not on the server" % required)
    for n in names:
        if any(c.isupper() or c.isspace() for c in n):
            raise GenError("unexpected command name %r" % n)

    vectors = []
    for n in sorted(names):
        for argv in argument_lists(n, docs.get(n, {})):
            answer = getkeys(conn, argv)
            if answer is not None:
                vectors.append((argv, answer))
    vectors.sort(key=lambda v: "|".join(v[0]))

    nsubs = sum(len(e["subs"]) for e in entries)
    with_keys = sum(1 for _, k in vectors if k not in ("", "!", "#"))
    summary = ("redis-server %s: %d commands (COMMAND COUNT %d), %d subcommands; "
               "%d GETKEYS vectors: %d with keys, %d without, %d invalid, %d wrong arity" %
               (version, len(entries), count, nsubs, len(vectors), with_keys,
                sum(1 for _, k in vectors if k == ""), sum(1 for _, k in vectors if k == "!"),
                sum(1 for _, k in vectors if k == "#")))
    return render(version, count, entries, docs, vectors), summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", help="HOST:PORT of a running redis-server (default: start one)")
    p.add_argument("--redis-server", default="redis-server", help="redis-server binary to start")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="file to write (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 1 if --output differs from what would be generated")
    opts = p.parse_args()

    try:
        if opts.server:
            host, _, port = opts.server.rpartition(":")
            conn = Resp(host or "127.0.0.1", int(port))
            text, summary = generate(conn)
            conn.close()
        else:
            with ThrowawayServer(opts.redis_server) as srv:
                conn = Resp("127.0.0.1", srv.port)
                text, summary = generate(conn)
                conn.close()
    except (GenError, OSError, RuntimeError) as e:
        print("gen_commands: error: %s" % e, file=sys.stderr)
        return 2

    print("gen_commands: " + summary)
    if opts.check:
        try:
            with open(opts.output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print("gen_commands: %s is out of date; re-run tools/gen_commands.py" % opts.output,
                  file=sys.stderr)
            return 1
        print("gen_commands: %s is up to date" % opts.output)
        return 0
    with open(opts.output, "w", encoding="utf-8") as f:
        f.write(text)
    print("gen_commands: wrote %s" % opts.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
