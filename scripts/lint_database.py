#!/usr/bin/env python3
"""The compile database scripts/lint gives clang-tidy.

Usage: lint_database.py BUILD_DIR LINT_DIR SOURCE_DIR

Writes LINT_DIR/compile_commands.json and LINT_DIR/checked_as.json (each of
our sources -> the file clang-tidy parses it through):
- each source of a library is checked on its own, with its unity file's
  flags: this is also where CI sees that each source compiles alone (the
  builds use unity files, where a missing include can be masked by the
  source before it);
- the test files of one binary (equal flags) are included by lint-only
  files, LINT_DIR/groups/group_N.cc, each holding files whose file-scope
  names differ (two tests may each define a helper of one name in an
  anonymous namespace, which one file cannot hold); a group's sources are
  listed beside it in group_N.cc.members for scripts/lint to check one by
  one if the group still does not compile (their own entries stay in the
  database for that), and the checks of the .clang-tidy files nearer to
  them than the root one (tests/.clang-tidy) in group_N.cc.checks, since
  clang-tidy takes its configuration from the group file's folder;
- gcc's precompiled header is replaced by its text, which clang can read.
"""
import json
import os
import re
import shlex
import shutil
import sys


def own_source(path, build_dir, source_dir):
    path = os.path.abspath(path)
    return (path.startswith(source_dir + os.sep) and not path.startswith(build_dir + os.sep)
            and "/build/" not in path[len(source_dir):])


def clang_arguments(args, lint_dir):
    """The compiler's arguments, minus what clang cannot take from gcc."""
    clean, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-Werror", "-Winvalid-pch"):
            continue
        if arg == "-include" and i + 1 < len(args) and args[i + 1].endswith("cmake_pch.hxx"):
            copy = os.path.join(lint_dir, "pch_%d.h" % (abs(hash(args[i + 1])) % 10**8))
            shutil.copyfile(args[i + 1], copy)
            clean += ["-include", copy]
            skip = True
            continue
        clean.append(arg)
    return clean


def flags_without_file(arguments, files):
    """The arguments minus the source and its object: equal for one binary's files."""
    flags, skip = [], False
    for arg in arguments:
        if skip:
            skip = False
        elif arg == "-o":
            skip = True
        elif arg not in files:
            flags.append(arg)
    return tuple(flags)


# A definition at file scope: the house style does not indent namespace
# bodies, so these start at column 0. Heuristic on purpose: a name missed
# costs a group that fails and is checked file by file, one too many a
# group more; neither costs a finding.
TYPE_NAME = re.compile(r"^(?:template\s*<.*>\s*)?(?:struct|class|union|enum(?:\s+class)?)\s+(\w+)")
ALIAS_NAME = re.compile(r"^using\s+(\w+)\s*=")
TEST_NAME = re.compile(r"^(?:TEST|TEST_F|TEST_P|TYPED_TEST)\(\s*(\w+)\s*,\s*(\w+)")
OBJECT_NAME = re.compile(r"^(?:extern \"C\"\s+)?[A-Za-z_][\w:<>,\s*&]*?\b([A-Za-z_]\w*)\s*(?:\(|=|\[|\{|;)")
NOT_A_DEFINITION = ("namespace", "using ", "return", "}", "#", "//", "static_assert",
                    "INSTANTIATE_", "template")


# Functions each program defines once (a test's main, a fuzz target's
# entry point): renamed around each include of a group (a macro), so the
# fuzz targets share a parse too.
ENTRY_POINTS = ("main", "LLVMFuzzerTestOneInput")


def file_scope_names(path):
    names = set()
    for line in open(path, errors="replace"):
        if not line[:1].isalpha() or line.startswith(NOT_A_DEFINITION):
            # A using-declaration (using std::chrono::seconds;) may repeat.
            match = (TYPE_NAME if line.startswith("template") else ALIAS_NAME).match(line)
            if match:
                names.add(match.group(1))
            continue
        match = TYPE_NAME.match(line)
        if match:
            names.add(match.group(1))
        else:
            match = TEST_NAME.match(line)
            if match:
                names.add(match.group(1) + "_" + match.group(2))
                continue
            match = OBJECT_NAME.match(line)
            if match:
                names.add(match.group(1))
    return names - set(ENTRY_POINTS)


def nearer_checks(path, source_dir):
    """The Checks of each .clang-tidy between the file and the root one,
    outermost first, as one --checks value (they inherit the root's)."""
    found, folder = [], os.path.dirname(path)
    while folder.startswith(source_dir + os.sep):
        config = os.path.join(folder, ".clang-tidy")
        if os.path.exists(config):
            match = re.search(r"^Checks:\s*'([^']*)'", open(config).read(), re.M)
            if not match:
                sys.exit("lint_database.py: %s: expected Checks: '...' on one line" % config)
            found.insert(0, match.group(1))
        folder = os.path.dirname(folder)
    return ",".join(found)


def split_by_names(members):
    """First fit: each file joins the first group none of whose files
    defines one of its file-scope names."""
    groups = []  # [(names, members)]
    for member in members:
        names = file_scope_names(member[0])
        for taken, group in groups:
            if not taken & names:
                taken |= names
                group.append(member)
                break
        else:
            groups.append((set(names), [member]))
    return [group for _, group in groups]


def main():
    build_dir, lint_dir, source_dir = (os.path.abspath(p) for p in sys.argv[1:4])
    entries = json.load(open(os.path.join(build_dir, "compile_commands.json")))
    database, checked_as, groups = [], {}, {}

    for entry in entries:
        args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        file = entry["file"]
        if not os.path.isabs(file):
            file = os.path.join(entry["directory"], file)
        if os.path.basename(file) == "cmake_pch.hxx.cxx":
            continue  # compiles the precompiled header itself
        unity = "/Unity/unity_" in file
        if unity:
            sources = [s for s in re.findall(r'#include "([^"]+)"', open(file).read())
                       if own_source(s, build_dir, source_dir)]
        else:
            sources = [file] if own_source(file, build_dir, source_dir) else []
        sources = [s for s in sources if s not in checked_as]
        if not sources:
            continue
        arguments = clang_arguments(args, lint_dir)
        if unity:
            for source in sources:
                command = [source if a == entry["file"] else a for a in arguments]
                database.append({"directory": entry["directory"], "file": source,
                                 "arguments": command})
                checked_as[source] = source
        else:
            command = [file if a == entry["file"] else a for a in arguments]
            database.append({"directory": entry["directory"], "file": file, "arguments": command})
            checked_as[file] = file
            key = (entry["directory"], flags_without_file(command, (file, entry["file"])))
            groups.setdefault(key, []).append((file, command))

    ordered = sorted(groups.items(), key=lambda group: group[1][0][0])
    split = []
    for (directory, _), members in ordered:
        by_checks = {}
        for member in members:
            by_checks.setdefault(nearer_checks(member[0], source_dir), []).append(member)
        split += [(directory, checks, part) for checks, same in by_checks.items()
                  for part in split_by_names(same)]
    for n, (directory, checks, members) in enumerate(split):
        if len(members) == 1:
            continue
        group = os.path.join(lint_dir, "groups", "group_%d.cc" % n)
        with open(group, "w") as text:
            text.write("// scripts/lint: one parse for the test files of one binary\n")
            for index, (file, _) in enumerate(members):
                renames = [name for name in ENTRY_POINTS
                           if re.search(r"\b%s\s*\(" % name, open(file, errors="replace").read())]
                text.writelines("#define %s %s_%d\n" % (name, name, index) for name in renames)
                text.write('#include "%s"\n' % file)
                text.writelines("#undef %s\n" % name for name in renames)
        with open(group + ".members", "w") as listing:
            listing.writelines(file + "\n" for file, _ in members)
        if checks:
            with open(group + ".checks", "w") as listing:
                listing.write(checks + "\n")
        first_file, first_command = members[0]
        command = [group if a == first_file else a for a in first_command]
        database.append({"directory": directory, "file": group, "arguments": command})
        for file, _ in members:
            checked_as[file] = group

    json.dump(database, open(os.path.join(lint_dir, "compile_commands.json"), "w"), indent=0)
    json.dump(checked_as, open(os.path.join(lint_dir, "checked_as.json"), "w"), indent=0)


if __name__ == "__main__":
    main()
