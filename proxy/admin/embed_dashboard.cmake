# Build step (cmake -P): turns dashboard.html into a C++ source holding its bytes and the
# Content-Security-Policy that lets exactly its one inline <script> and one inline <style> run.
#   -DINPUT=.../dashboard.html -DOUTPUT=.../dashboard_page.cc
# The page is kept as a real HTML file (edit it, open it in a browser); the binary serves the
# bytes this step copies, so there is never a second copy of the page to keep in step by hand.
#
# The CSP names the inline blocks by their SHA-256 (CSP level 2 hash sources) rather than allowing
# 'unsafe-inline': a script the page did not ship cannot run even if one were injected.

cmake_minimum_required(VERSION 3.25)

# Standard base64 of the bytes a hex string spells (what a CSP hash source wants).
function(hex_to_base64 hex out)
  set(alpha "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  string(LENGTH "${hex}" n)
  set(result "")
  set(i 0)
  while(i LESS n)
    string(SUBSTRING "${hex}" ${i} 6 chunk)
    string(LENGTH "${chunk}" len)
    set(padded "${chunk}")
    while(len LESS 6)
      string(APPEND padded "0")
      string(LENGTH "${padded}" len)
    endwhile()
    string(LENGTH "${chunk}" len)
    math(EXPR v "0x${padded}")
    foreach(shift 18 12 6 0)
      math(EXPR idx "(${v} >> ${shift}) & 63")
      string(SUBSTRING "${alpha}" ${idx} 1 c)
      list(APPEND chars "${c}")
    endforeach()
    # 3 bytes -> 4 characters; 2 bytes -> 3 and "="; 1 byte -> 2 and "==".
    list(GET chars 0 c0)
    list(GET chars 1 c1)
    list(GET chars 2 c2)
    list(GET chars 3 c3)
    set(chars "")
    if(len EQUAL 6)
      string(APPEND result "${c0}${c1}${c2}${c3}")
    elseif(len EQUAL 4)
      string(APPEND result "${c0}${c1}${c2}=")
    else()
      string(APPEND result "${c0}${c1}==")
    endif()
    math(EXPR i "${i} + 6")
  endwhile()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# 'sha256-...' of the text between <tag> and </tag>; the page must have exactly one such block.
function(inline_hash html tag out)
  string(FIND "${html}" "<${tag}>" open)
  string(FIND "${html}" "</${tag}>" close)
  string(FIND "${html}" "<${tag}" open_any REVERSE)
  if(open LESS 0 OR close LESS open OR NOT open_any EQUAL open)
    message(FATAL_ERROR "${INPUT}: needs exactly one plain <${tag}> block")
  endif()
  string(LENGTH "<${tag}>" taglen)
  math(EXPR start "${open} + ${taglen}")
  math(EXPR len "${close} - ${start}")
  string(SUBSTRING "${html}" ${start} ${len} body)
  string(SHA256 hex "${body}")
  hex_to_base64("${hex}" b64)
  set(${out} "'sha256-${b64}'" PARENT_SCOPE)
endfunction()

file(READ "${INPUT}" html)
inline_hash("${html}" script script_src)
inline_hash("${html}" style style_src)
set(csp "default-src 'none'; script-src ${script_src}; style-src ${style_src}; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR size "${hexlen} / 2")
# 16 bytes a line: break the hex every 32 digits, then spell each pair as 0xNN.
string(REPEAT "[0-9a-f]" 32 line_of_hex)
string(REGEX REPLACE "(${line_of_hex})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")

set(text "// Generated from proxy/admin/dashboard.html by proxy/admin/embed_dashboard.cmake: do not edit.
#include \"proxy/admin/dashboard.h\"

namespace corral::admin {
namespace {

const unsigned char kPage[${size}] = {
${bytes}};

}  // namespace

std::string_view dashboardHtml() {
  return {reinterpret_cast<const char*>(kPage), sizeof kPage};
}

std::string_view dashboardCsp() {
  return \"${csp}\";
}

}  // namespace corral::admin
")
# Rewrite only on change, so an unchanged page does not recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
