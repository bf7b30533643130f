#pragma once

// RapidJSON, as the whole model uses it (compact DOM, fast parse: the
// 10,000-service model must load in well under a second). Debian's 1.1.0
// trips GCC 12's -Wclass-memaccess in its own headers; silence that there
// only.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wclass-memaccess"
#endif
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#pragma GCC diagnostic pop
