#!/usr/bin/env python3
"""The compile database scripts/lint gives clang-tidy.

Usage: lint_database.py BUILD_DIR LINT_DIR SOURCE_DIR

Writes LINT_DIR/compile_commands.json and LINT_DIR/checked_as.json (each of
our sources -> the file clang-tidy parses it through):
- a library's unity file stands for its sources;
- the test files of one binary (equal flags) are included by one lint-only
  file, LINT_DIR/groups/group_N.cc, whose sources are listed beside it in
  group_N.cc.members for scripts/lint to check one by one if the group does
  not compile; their own entries stay in the database for that;
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
        command = [file if a == entry["file"] else a for a in clang_arguments(args, lint_dir)]
        database.append({"directory": entry["directory"], "file": file, "arguments": command})
        if unity:
            for source in sources:
                checked_as[source] = file
        else:
            checked_as[file] = file
            key = (entry["directory"], flags_without_file(command, (file, entry["file"])))
            groups.setdefault(key, []).append((file, command))

    ordered = sorted(groups.items(), key=lambda group: group[1][0][0])
    for n, ((directory, _), members) in enumerate(ordered):
        if len(members) == 1:
            continue
        group = os.path.join(lint_dir, "groups", "group_%d.cc" % n)
        with open(group, "w") as text:
            text.write("// scripts/lint: one parse for the test files of one binary\n")
            text.writelines('#include "%s"\n' % file for file, _ in members)
        with open(group + ".members", "w") as listing:
            listing.writelines(file + "\n" for file, _ in members)
        first_file, first_command = members[0]
        command = [group if a == first_file else a for a in first_command]
        database.append({"directory": directory, "file": group, "arguments": command})
        for file, _ in members:
            checked_as[file] = group

    json.dump(database, open(os.path.join(lint_dir, "compile_commands.json"), "w"), indent=0)
    json.dump(checked_as, open(os.path.join(lint_dir, "checked_as.json"), "w"), indent=0)


if __name__ == "__main__":
    main()
