# Helpers shared by every component's CMakeLists.

# sluice_test(NAME SOURCES... [LIBS ...] [LABELS ...]): a GoogleTest binary
# registered with CTest, one CTest entry per binary (keeps ctest start-up
# cheap), labelled for `ctest -L`.
function(sluice_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# sluice_plugin(NAME SOURCES... [LIBS ...]): a plugin shared object named
# libsluice_<NAME>.so in the plugin directory, built with hidden visibility
# against the SDK headers only (plugins never link the core).
function(sluice_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(sluice_plugin_${name} MODULE ${P_SOURCES})
  set_target_properties(sluice_plugin_${name} PROPERTIES
    OUTPUT_NAME sluice_${name}
    LIBRARY_OUTPUT_DIRECTORY ${SLUICE_PLUGIN_DIR}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(sluice_plugin_${name} PRIVATE sluice_sdk ${P_LIBS})
  target_link_options(sluice_plugin_${name} PRIVATE -Wl,--no-undefined)
endfunction()
