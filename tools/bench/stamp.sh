#!/bin/bash
# A backend command for the benchmarks: appends "<epoch seconds.micro> WORD" to FILE.
#   stamp.sh WORD FILE
printf '%s %s\n' "$EPOCHREALTIME" "$1" >>"$2"
