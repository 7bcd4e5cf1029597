#include "kullsync/transports/headers.hpp"

#include <cctype>

namespace kullsync {

bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(x[i]))
        != std::tolower(static_cast<unsigned char>(y[i])))
      return false;
  return true;
}

std::optional<std::string_view> header_value(const header_list& headers,
                                             std::string_view name) {
  for (auto& [n, value] : headers)
    if (iequals(n, name))
      return std::string_view{value};
  return std::nullopt;
}

std::optional<std::string_view> bearer_credentials(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()
      || !iequals(authorization.substr(0, scheme.size()), scheme))
    return std::nullopt;
  return authorization.substr(scheme.size());
}

} // namespace kullsync
