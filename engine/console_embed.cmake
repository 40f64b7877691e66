# console_embed.cmake - turn every file under engine/console/ into one C
# table {path, content type, bytes, length} (console_assets.h), so that
# sluiced serves the web console from its own binary: no files to install,
# nothing fetched from elsewhere.  The content type comes from the file's
# extension; an unknown extension is an error (a file the console would
# serve with a guessed type).
# Usage: cmake -DDIR=engine/console -DOUT=console_assets.c -P console_embed.cmake
file(GLOB_RECURSE files RELATIVE "${DIR}" "${DIR}/*")
list(SORT files)
set(types_html "text/html; charset=utf-8")
set(types_js "text/javascript; charset=utf-8")
set(types_css "text/css; charset=utf-8")
set(types_svg "image/svg+xml")
set(types_png "image/png")
set(types_ico "image/x-icon")
set(types_json "application/json")
set(types_txt "text/plain; charset=utf-8")
set(arrays "")
set(rows "")
set(i 0)
foreach(f ${files})
  get_filename_component(ext "${f}" LAST_EXT)
  string(SUBSTRING "${ext}" 1 -1 ext)
  string(TOLOWER "${ext}" ext)
  if(NOT DEFINED types_${ext})
    message(FATAL_ERROR "console_embed: ${f}: no content type for '.${ext}'")
  endif()
  file(READ "${DIR}/${f}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  string(APPEND arrays "static const unsigned char asset_${i}[] = {${body}0x00};\n")
  string(APPEND rows "    { \"/${f}\", \"${types_${ext}}\", asset_${i}, ${len} },\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}.tmp"
  "/* generated from engine/console/ by console_embed.cmake */\n"
  "#include \"console_assets.h\"\n"
  "${arrays}"
  "const struct console_asset console_assets[] = {\n${rows}"
  "    { 0, 0, 0, 0 },\n};\n")
# rewrite only on change, so an unchanged console rebuilds nothing
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
