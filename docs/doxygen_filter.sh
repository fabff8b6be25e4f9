#!/bin/sh
# Doxygen input filter: mark each public header as a documented file (the header's own
# comment says what it is for), so Doxygen lists all of its members and warns about any
# that lack documentation. The mark goes at the end to keep line numbers right.
cat "$1"
case "$1" in
  *.h) printf '\n/** @file */\n' ;;
esac
