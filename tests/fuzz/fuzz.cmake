# fuzz.cmake - sluice_fuzz_target(): one libFuzzer target, its ctest entry
# and its line in the manifest `make fuzz` reads.
#
#   sluice_fuzz_target(NAME
#       SOURCES file...            the target's .c and the sources it tests
#       CORPUS dir                 seed corpus (read only: runs use a copy)
#       [INCLUDES dir...] [LIBS lib...] [DEPENDS target...]
#       [DICT file] [MAX_LEN n] [RUNS n] [TEST name])
#
# Built only with clang (tools/deps.sh installs it and libclang-rt-14-dev):
# with clang as the compiler it is an ordinary target; otherwise clang
# builds it on the side from SOURCES in one command; without clang the
# project builds and the target's test fails, saying so.  Either way it gets
# -fsanitize=fuzzer,address,undefined, so the normal and the ASan build
# both run a sanitized fuzzer.  LIBS are link arguments (full paths or
# -lname), not CMake targets: a library built by the project's compiler
# would not share the fuzzer's sanitizer runtime, so the sources a target
# needs are compiled into it.
#
# ctest runs `fuzz.sh check` for RUNS inputs (default 20000; at most 25 s)
# over a copy of CORPUS in the build directory, never writing into the
# source tree.  Every target is also written to
# ${CMAKE_BINARY_DIR}/fuzz-targets.txt (name, binary, corpus, dictionary,
# max_len) for `make fuzz` (tests/fuzz/fuzz.sh campaign).

find_program(SLUICE_CLANG NAMES clang clang-14)
set(SLUICE_FUZZ_SH ${CMAKE_CURRENT_LIST_DIR}/fuzz.sh)
set(SLUICE_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

function(sluice_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS;DICT;MAX_LEN;RUNS;TEST"
                        "SOURCES;INCLUDES;LIBS;DEPENDS" ${ARGN})
  if(NOT F_SOURCES OR NOT F_CORPUS)
    message(FATAL_ERROR "sluice_fuzz_target(${name}): SOURCES and CORPUS")
  endif()
  if(NOT F_MAX_LEN)
    set(F_MAX_LEN 4096)
  endif()
  if(NOT F_RUNS)
    set(F_RUNS 20000)
  endif()
  if(NOT F_TEST)
    set(F_TEST ${name})
  endif()

  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_executable(${name} ${F_SOURCES})
    target_include_directories(${name} PRIVATE ${F_INCLUDES})
    target_compile_options(${name} PRIVATE ${SLUICE_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE ${SLUICE_FUZZ_FLAGS})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    if(F_DEPENDS)
      add_dependencies(${name} ${F_DEPENDS})
    endif()
    set(bin $<TARGET_FILE:${name}>)
  elseif(SLUICE_CLANG)
    set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name})
    set(incs "")
    foreach(d ${F_INCLUDES})
      list(APPEND incs -I${d})
    endforeach()
    set(implicit "")
    foreach(s ${F_SOURCES})
      list(APPEND implicit C ${s})
    endforeach()
    add_custom_command(OUTPUT ${bin}
      COMMAND ${SLUICE_CLANG} -std=c11 -D_GNU_SOURCE -g -O1
              -Wall -Wextra -Wno-unused-parameter -Werror
              ${SLUICE_FUZZ_FLAGS} ${incs} ${F_SOURCES} ${F_LIBS} -o ${bin}
      DEPENDS ${F_SOURCES} ${F_DEPENDS}
      IMPLICIT_DEPENDS ${implicit}
      COMMENT "libFuzzer target ${name} (clang)"
      VERBATIM)
    add_custom_target(${name} ALL DEPENDS ${bin})
  else()
    # the project still builds; the test fails, saying why (no silent skip)
    message(WARNING "${name}: no clang, so no libFuzzer target "
                    "(sh tools/deps.sh test installs it)")
    add_test(NAME ${F_TEST} COMMAND sh -c "echo '${name}: clang is needed \
for the libFuzzer targets: sh tools/deps.sh test' >&2; exit 1")
    return()
  endif()

  set(dict "-")
  if(F_DICT)
    set(dict ${F_DICT})
  endif()
  add_test(NAME ${F_TEST}
    COMMAND sh ${SLUICE_FUZZ_SH} check ${bin} ${F_CORPUS}
            ${CMAKE_CURRENT_BINARY_DIR}/${name}-run ${dict} ${F_MAX_LEN}
            ${F_RUNS})
  set_tests_properties(${F_TEST} PROPERTIES TIMEOUT 120 LABELS fuzz)
  set_property(GLOBAL APPEND PROPERTY SLUICE_FUZZ_MANIFEST
               "${name} ${bin} ${F_CORPUS} ${dict} ${F_MAX_LEN}")
endfunction()

# Write the manifest once every target is declared (call at the end of
# the top tests/ list file).
function(sluice_fuzz_manifest)
  get_property(lines GLOBAL PROPERTY SLUICE_FUZZ_MANIFEST)
  list(JOIN lines "\n" text)
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fuzz-targets.txt
       CONTENT "${text}\n")
endfunction()
