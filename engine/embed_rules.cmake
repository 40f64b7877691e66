# embed_rules.cmake - turn a shipped text file (tools/bounce-rules.default,
# tools/provider-profiles.conf) into a C array, so the compiled-in text and
# the file a reader sees are one text.
# Usage: cmake -DIN=file -DOUT=file.c [-DVAR=name] -P embed_rules.cmake
if(NOT VAR)
  set(VAR bounce_rules_default_src)
endif()
get_filename_component(base "${IN}" NAME)
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}"
  "/* generated from ${base} by embed_rules.cmake */\n"
  "const char ${VAR}[] = {${body}0x00};\n")
