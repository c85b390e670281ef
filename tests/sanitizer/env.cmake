# Included by ctest (TEST_INCLUDE_FILES, set when SIGIL_SANITIZE is on) before
# any test runs. What it sets goes into ctest's own environment, so every test
# process inherits it, and so does every child a test starts (sigild, sigil,
# sigil-validator), whichever CMakeLists.txt registered the test.
#
# ASan: leaks are checked at exit (the default on Linux, said here so that it
# stays on) and initialisation order across translation units is checked.
# UBSan: a report stops the process (as -fno-sanitize-recover does for sigil's
# own code) and prints its stack, so a child's report is not a lone line.
# Suppressions name third-party code only; each entry says why it is not ours.
# Options already in the environment are appended, so they win.
function(sigil_sanitizer_options tool options)
  if(NOT "$ENV{${tool}_OPTIONS}" STREQUAL "")
    string(APPEND options ":$ENV{${tool}_OPTIONS}")
  endif()
  set(ENV{${tool}_OPTIONS} "${options}")
endfunction()
sigil_sanitizer_options(ASAN "detect_leaks=1:check_initialization_order=1")
sigil_sanitizer_options(LSAN "suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0")
sigil_sanitizer_options(UBSAN
  "halt_on_error=1:print_stacktrace=1:suppressions=${CMAKE_CURRENT_LIST_DIR}/ubsan.supp")
