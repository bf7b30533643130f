#pragma once

#include <optional>
#include <string>

namespace nodemesh::ctl {

// `nodemeshctl validate PATH [--kind KIND] [--output text|json]`: loads a
// config dir or one file as the agent would, prints every error and warning
// with its file, resource and field, and returns the exit status: 0 valid,
// 1 invalid, 2 bad usage.
int RunValidate(const std::string& path, const std::string& kind,
                const std::string& output);

}  // namespace nodemesh::ctl
