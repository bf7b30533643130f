#pragma once

// Malformed and hostile HTTP/1.1 requests that Http1Parser must reject, with
// the status a server answers. Each one is complete (its head ends with an
// empty line and any body is present), so a parser that wrongly accepted it
// would deliver a whole message and the server would answer 200. Shared by
// the unit test and, later, the proxy's integration tests, which send the
// same bytes over a socket.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nodemesh::http::testing {

struct HostileRequest {
  const char* name;
  int expected_status;
  std::string_view bytes;
};

// A string literal as bytes, embedded NULs included (a plain const char*
// would stop at the first one).
template <size_t N>
constexpr std::string_view Bytes(const char (&literal)[N]) {
  return std::string_view(literal, N - 1);
}

inline constexpr HostileRequest kHostileRequests[] = {
    // Framing: Content-Length and Transfer-Encoding (request smuggling).
    {"cl_then_te", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
    {"te_then_cl", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Content-Length: 5\r\n\r\n0\r\n\r\n")},
    {"cl_zero_with_te", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
    {"cl_two_lines_differing", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
           "Content-Length: 6\r\n\r\nhello")},
    {"cl_list_differing", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello")},
    {"cl_list_with_garbage", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, x\r\n\r\nhello")},
    {"cl_negative", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n")},
    {"cl_plus_sign", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello")},
    {"cl_space_inside", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\nhello")},
    {"cl_non_digit", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: five\r\n\r\nhello")},
    {"cl_hex", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\nhello")},
    {"cl_decimal_point", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5.0\r\n\r\nhello")},
    {"cl_trailing_semicolon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5;\r\n\r\nhello")},
    {"cl_empty", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n")},
    {"cl_only_comma", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,\r\n\r\n")},
    {"cl_20_digits", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\n"
           "Content-Length: 18446744073709551616\r\n\r\n")},
    {"cl_space_before_colon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello")},
    {"cl_obs_fold", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n 5\r\n\r\nhello")},
    {"te_gzip_only", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n")},
    {"te_chunked_identity", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\n"
           "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")},
    {"te_chunked_gzip", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\n"
           "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n")},
    {"te_two_lines_identity_last", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n")},
    {"te_chunked_twice", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\n"
           "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n")},
    {"te_two_lines_chunked", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
    {"te_obs_fold", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n"
           "\r\n0\r\n\r\n")},
    {"te_obs_fold_after_value", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
           "\t, chunked\r\n\r\n0\r\n\r\n")},
    {"te_space_before_colon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n"
           "\r\n0\r\n\r\n")},
    {"te_tab_before_colon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\t: chunked\r\n"
           "\r\n0\r\n\r\n")},
    {"te_xchunked", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n"
           "\r\n0\r\n\r\n")},
    {"te_quoted", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n"
           "\r\n0\r\n\r\n")},
    {"te_chunked_with_parameter", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n"
           "\r\n0\r\n\r\n")},
    {"te_empty", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n")},
    {"te_only_comma", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n")},
    {"te_vertical_tab", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0b"
           "chunked\r\n"
           "\r\n0\r\n\r\n")},
    {"te_nul_after_value", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\0\r\n"
           "\r\n0\r\n\r\n")},
    {"te_in_http10", 400,
     Bytes("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
    {"connect_with_content_length", 400,
     Bytes("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 5\r\n"
           "\r\nhello")},
    {"connect_with_chunked", 400,
     Bytes("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
    // Chunked body framing.
    {"chunk_size_hex_prefix", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0x5\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_negative", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "-5\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_plus", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "+5\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_non_hex", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5g\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_17_digits", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "10000000000000005\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_overflow", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_empty", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_leading_space", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           " 5\r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_trailing_space", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5 \r\nhello\r\n0\r\n\r\n")},
    {"chunk_size_bare_lf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\nhello\r\n0\r\n\r\n")},
    {"chunk_size_bare_cr", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\rhello\r\n0\r\n\r\n")},
    {"chunk_data_missing_crlf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello0\r\n\r\n")},
    {"chunk_data_longer_than_size", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nhello\r\n0\r\n\r\n")},
    {"chunk_data_bare_lf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\n0\r\n\r\n")},
    {"chunk_data_bare_cr", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r0\r\n\r\n")},
    {"last_chunk_bare_lf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n0\n\r\n")},
    {"chunk_ext_control_char", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;a=\x01\r\nhello\r\n0\r\n\r\n")},
    {"chunk_ext_bare_lf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;a=b\nhello\r\n0\r\n\r\n")},
    {"chunk_ext_del", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;a=\x7f\r\nhello\r\n0\r\n\r\n")},
    {"trailer_space_before_colon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\nX-T : 1\r\n\r\n")},
    {"trailer_obs_fold", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\nX-T: 1\r\n folded\r\n\r\n")},
    {"trailer_bare_lf", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\nX-T: 1\n\r\n")},
    {"trailer_without_colon", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\nX-T\r\n\r\n")},
    {"trailer_nul_in_value", 400,
     Bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\nX-T: a\0b\r\n\r\n")},
    // Line endings and control bytes.
    {"bare_lf_after_request_line", 400,
     Bytes("GET / HTTP/1.1\nHost: h\r\n\r\n")},
    {"bare_lf_after_header", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\nX-B: 2\r\n\r\n")},
    {"bare_lf_only_line_endings", 400, Bytes("GET / HTTP/1.1\nHost: h\n\n")},
    {"bare_lf_ending_header_section", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\n\n\r\n")},
    {"bare_cr_in_request_line", 400,
     Bytes("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"bare_cr_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n")},
    {"cr_cr_lf", 400, Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\r\n\r\n")},
    {"leading_bare_lf", 400, Bytes("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"leading_bare_cr", 400, Bytes("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"nul_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n")},
    {"nul_in_header_name", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX\0A: 1\r\n\r\n")},
    {"nul_in_target", 400, Bytes("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"nul_in_method", 400, Bytes("GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"nul_in_host", 400, Bytes("GET / HTTP/1.1\r\nHost: h\0evil\r\n\r\n")},
    {"del_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n")},
    {"soh_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01\r\n\r\n")},
    {"esc_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x1b[31mred\r\n\r\n")},
    {"form_feed_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x0c"
           "b\r\n\r\n")},
    {"vertical_tab_in_header_value", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x0b"
           "b\r\n\r\n")},
    // Request line.
    {"two_spaces_after_method", 400,
     Bytes("GET  / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"two_spaces_before_version", 400,
     Bytes("GET /  HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"space_after_version", 400, Bytes("GET / HTTP/1.1 \r\nHost: h\r\n\r\n")},
    {"space_before_method", 400, Bytes(" GET / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"tab_separators", 400, Bytes("GET\t/\tHTTP/1.1\r\nHost: h\r\n\r\n")},
    {"tab_before_version", 400, Bytes("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n")},
    {"space_in_target", 400, Bytes("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"tab_in_target", 400, Bytes("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"control_char_in_target", 400,
     Bytes("GET /a\x01"
           "b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"del_in_target", 400,
     Bytes("GET /a\x7f"
           "b HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"absolute_form_space_in_host", 400,
     Bytes("GET http://exa mple.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")},
    {"absolute_form_control_in_host", 400,
     Bytes("GET http://exa\x01mple.com/ HTTP/1.1\r\nHost: example.com\r\n"
           "\r\n")},
    {"missing_version_http09", 400, Bytes("GET /\r\nHost: h\r\n\r\n")},
    {"method_only", 400, Bytes("GET\r\nHost: h\r\n\r\n")},
    {"only_spaces", 400, Bytes("  \r\nHost: h\r\n\r\n")},
    {"response_line_as_request", 400,
     Bytes("HTTP/1.1 200 OK\r\nHost: h\r\n\r\n")},
    {"method_with_slash", 400, Bytes("GET/ / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"method_with_at", 400, Bytes("G@T / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"method_with_colon", 400, Bytes("GET: / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"method_with_quote", 400, Bytes("G\"ET / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"method_with_del", 400, Bytes("GE\x7fT / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"method_utf8", 400, Bytes("G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n")},
    {"version_http09", 505, Bytes("GET / HTTP/0.9\r\nHost: h\r\n\r\n")},
    {"version_http2", 505, Bytes("GET / HTTP/2.0\r\nHost: h\r\n\r\n")},
    {"version_http3", 505, Bytes("GET / HTTP/3.0\r\nHost: h\r\n\r\n")},
    {"version_http9", 505, Bytes("GET / HTTP/9.9\r\nHost: h\r\n\r\n")},
    {"version_1_10", 400, Bytes("GET / HTTP/1.10\r\nHost: h\r\n\r\n")},
    {"version_lowercase", 400, Bytes("GET / http/1.1\r\nHost: h\r\n\r\n")},
    {"version_no_minor", 400, Bytes("GET / HTTP/1\r\nHost: h\r\n\r\n")},
    {"version_http2_short", 400, Bytes("GET / HTTP/2\r\nHost: h\r\n\r\n")},
    {"version_three_parts", 400, Bytes("GET / HTTP/1.1.1\r\nHost: h\r\n\r\n")},
    {"version_https", 400, Bytes("GET / HTTPS/1.1\r\nHost: h\r\n\r\n")},
    {"version_comma", 400, Bytes("GET / HTTP/1,1\r\nHost: h\r\n\r\n")},
    {"version_fullwidth_digit", 400,
     Bytes("GET / HTTP/1.\xef\xbc\x91\r\nHost: h\r\n\r\n")},
    // Header fields.
    {"space_before_colon", 400, Bytes("GET / HTTP/1.1\r\nHost : h\r\n\r\n")},
    {"tab_before_colon", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n")},
    {"obs_fold_space", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n")},
    {"obs_fold_tab", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n")},
    {"first_field_folded", 400, Bytes("GET / HTTP/1.1\r\n Host: h\r\n\r\n")},
    {"line_without_colon", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n")},
    {"empty_name", 400, Bytes("GET / HTTP/1.1\r\nHost: h\r\n: value\r\n\r\n")},
    {"colon_only", 400, Bytes("GET / HTTP/1.1\r\nHost: h\r\n:\r\n\r\n")},
    {"name_with_space", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n")},
    {"name_with_at", 400, Bytes("GET / HTTP/1.1\r\nHost: h\r\nX@A: 1\r\n\r\n")},
    {"name_with_slash", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX/A: 1\r\n\r\n")},
    {"name_with_equals", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX=A: 1\r\n\r\n")},
    {"name_with_brackets", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX[A]: 1\r\n\r\n")},
    {"name_with_backslash", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX\\A: 1\r\n\r\n")},
    {"name_with_del", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX\x7f"
           "A: 1\r\n\r\n")},
    {"name_utf8", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: 1\r\n\r\n")},
    {"name_with_control", 400,
     Bytes("GET / HTTP/1.1\r\nHost: h\r\nX\x01"
           "A: 1\r\n\r\n")},
    {"missing_host", 400, Bytes("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n")},
    {"missing_host_absolute_form", 400,
     Bytes("GET http://h/ HTTP/1.1\r\n\r\n")},
    {"two_hosts_differing", 400,
     Bytes("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")},
    {"two_hosts_equal", 400,
     Bytes("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")},
    {"two_hosts_case_variant", 400,
     Bytes("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n")},
    {"host_obs_fold", 400, Bytes("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n")},

};

// Cases too large for a literal: limits of the header and trailer sections
// (Http1ParserOptions defaults: 60 KiB, 100 fields).
struct OwnedHostileRequest {
  std::string name;
  int expected_status;
  std::string bytes;
};

inline std::vector<OwnedHostileRequest> OversizedRequests() {
  constexpr size_t kOverLimit = size_t{61} * 1024;
  const std::string chunked_head =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::vector<OwnedHostileRequest> out;
  out.push_back({"header_value_over_limit", 431,
                 "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " +
                     std::string(kOverLimit, 'a') + "\r\n\r\n"});
  out.push_back({"request_line_over_limit", 431,
                 "GET /" + std::string(kOverLimit, 'a') +
                     " HTTP/1.1\r\nHost: h\r\n\r\n"});
  out.push_back(
      {"method_over_limit", 431,
       std::string(kOverLimit, 'G') + " / HTTP/1.1\r\nHost: h\r\n\r\n"});
  {
    // Many small fields that add up past the byte limit (under 100 fields).
    std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 62; ++i) {
      req += "X-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
    }
    out.push_back(
        {"header_bytes_over_limit_in_many_fields", 431, req + "\r\n"});
  }
  {
    std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 100; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
    out.push_back({"too_many_header_fields", 431, req + "\r\n"});
  }
  {
    std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 1000; ++i) req += "X: v\r\n";
    out.push_back({"thousand_repeated_fields", 431, req + "\r\n"});
  }
  {
    // Empty lines before the request line count toward the limit.
    std::string req;
    for (size_t i = 0; i < kOverLimit / 2; ++i) req += "\r\n";
    out.push_back({"leading_empty_lines_over_limit", 431,
                   req + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"});
  }
  out.push_back({"trailer_section_over_limit", 431,
                 chunked_head + "0\r\nX-T: " + std::string(kOverLimit, 't') +
                     "\r\n\r\n"});
  {
    std::string req = chunked_head + "0\r\n";
    for (int i = 0; i < 101; ++i) req += "X-T" + std::to_string(i) + ": v\r\n";
    out.push_back({"too_many_trailer_fields", 431, req + "\r\n"});
  }
  out.push_back({"chunk_extension_over_limit", 400,
                 chunked_head + "5;" + std::string(kOverLimit, 'e') +
                     "\r\nhello\r\n0\r\n\r\n"});
  {
    // Endless chunk-size zeros never reach a digit count that fits.
    out.push_back(
        {"chunk_size_many_leading_zeros", 400,
         chunked_head + std::string(100, '0') + "5\r\nhello\r\n0\r\n\r\n"});
  }
  return out;
}

}  // namespace nodemesh::http::testing
