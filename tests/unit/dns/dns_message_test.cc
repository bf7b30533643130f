// The mesh DNS's wire format: queries read exactly, answers that a real
// resolver accepts, and malformed datagrams refused without reading past
// their end.

#include "agent/dns/dns_message.h"

#include <arpa/inet.h>
#include <resolv.h>

#include <string>

#include "gtest/gtest.h"

namespace nodemesh::dns {
namespace {

// A query as glibc's res_mkquery builds it.
std::string Query(const std::string& name, int type) {
  unsigned char buf[512];
  int n = res_mkquery(QUERY, name.c_str(), C_IN, type, nullptr, 0, nullptr, buf,
                      sizeof(buf));
  EXPECT_GT(n, 0);
  return std::string(reinterpret_cast<char*>(buf), n > 0 ? n : 0);
}

TEST(DnsMessageTest, ReadsTheQuestionLowercased) {
  std::string q = Query("Product.Shop.Local.", ns_t_a);
  auto parsed = ParseQuery(q);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->name, "product.shop.local");
  EXPECT_EQ(parsed->type, kTypeA);
  EXPECT_EQ(parsed->qclass, kClassIn);
  EXPECT_EQ(parsed->question_end, q.size());
}

TEST(DnsMessageTest, AnswerParsesWithGlibcAndCarriesTheVip) {
  std::string q = Query("product.shop.local", ns_t_a);
  auto parsed = ParseQuery(q);
  ASSERT_TRUE(parsed);
  std::string a = BuildAnswer(q, *parsed, 0x7f800003, 30);
  ns_msg msg;
  ASSERT_EQ(ns_initparse(reinterpret_cast<const unsigned char*>(a.data()),
                         static_cast<int>(a.size()), &msg),
            0);
  EXPECT_EQ(ns_msg_count(msg, ns_s_an), 1);
  EXPECT_EQ(ns_msg_getflag(msg, ns_f_rcode), ns_r_noerror);
  EXPECT_EQ(ns_msg_getflag(msg, ns_f_aa), 1);
  ns_rr rr;
  ASSERT_EQ(ns_parserr(&msg, ns_s_an, 0, &rr), 0);
  EXPECT_STREQ(ns_rr_name(rr), "product.shop.local");
  EXPECT_EQ(ns_rr_type(rr), ns_t_a);
  EXPECT_EQ(ns_rr_ttl(rr), 30u);
  ASSERT_EQ(ns_rr_rdlen(rr), 4);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof(text));
  EXPECT_STREQ(text, "127.128.0.3");
  // The id is the query's.
  EXPECT_EQ(a.substr(0, 2), q.substr(0, 2));
}

TEST(DnsMessageTest, NoDataAndNxDomainHaveNoAnswer) {
  std::string q = Query("product.shop.local", ns_t_aaaa);
  auto parsed = ParseQuery(q);
  ASSERT_TRUE(parsed);
  for (uint8_t rcode : {kRcodeNoError, kRcodeNxDomain}) {
    std::string a = BuildAnswer(q, *parsed, std::nullopt, 30, rcode);
    ns_msg msg;
    ASSERT_EQ(ns_initparse(reinterpret_cast<const unsigned char*>(a.data()),
                           static_cast<int>(a.size()), &msg),
              0);
    EXPECT_EQ(ns_msg_count(msg, ns_s_an), 0);
    EXPECT_EQ(ns_msg_getflag(msg, ns_f_rcode), rcode);
  }
}

TEST(DnsMessageTest, RefusesWhatIsNotOneQuestion) {
  std::string q = Query("a.b", ns_t_a);
  EXPECT_FALSE(ParseQuery(q.substr(0, 11)));            // short header
  EXPECT_FALSE(ParseQuery(q.substr(0, q.size() - 1)));  // cut question
  std::string response = q;
  response[2] = static_cast<char>(response[2] | 0x80);  // QR set
  EXPECT_FALSE(ParseQuery(response));
  std::string two = q;
  two[5] = 2;  // QDCOUNT 2
  EXPECT_FALSE(ParseQuery(two));
  std::string pointer = q;
  pointer[12] = static_cast<char>(0xc0);  // a compression pointer
  EXPECT_FALSE(ParseQuery(pointer));
  std::string long_label = q;
  long_label[12] = 64;
  EXPECT_FALSE(ParseQuery(long_label));
  std::string err = BuildError(q, kRcodeFormErr);
  ASSERT_EQ(err.size(), 12u);
  EXPECT_EQ(err.substr(0, 2), q.substr(0, 2));
  EXPECT_EQ(err[3] & 0xf, kRcodeFormErr);
}

}  // namespace
}  // namespace nodemesh::dns
