# embed_rules.cmake - turn tools/bounce-rules.default into a C array, so the
# compiled-in defaults and the installed file are one text.
# Usage: cmake -DIN=file -DOUT=file.c -P embed_rules.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}"
  "/* generated from bounce-rules.default by embed_rules.cmake */\n"
  "const char bounce_rules_default_src[] = {${body}0x00};\n")
