#pragma once

// Private to kullsync_messages: the readers of each payload (data of a server
// message, payload of a client message), used by the envelope reader.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "kullsync/messages/types.hpp"
#include "read_support.hpp"

namespace kullsync::msg::detail::payload {

using read::object_reader;
using read::path_node;
namespace json = boost::json;

template <class F>
auto read_array(const json::value& v, const path_node* at, F read_item) {
  if (!v.is_array())
    wrong_type(v, at, "array");
  std::vector<decltype(read_item(v, at))> xs;
  auto& arr = v.get_array();
  xs.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    path_node p{at, {}, i, true};
    xs.push_back(read_item(arr[i], &p));
  }
  return xs;
}

shoot_progress read_shoot_progress(const json::value& v, const path_node* at);
credit_update read_credit_update(const json::value& v, const path_node* at);
prompt_change read_prompt_change(const json::value& v, const path_node* at);
device_connection read_device_connection(const json::value& v, const path_node* at);
admin_session_update read_admin_session_update(const json::value& v, const path_node* at);
history_point read_history_point(const json::value& v, const path_node* at);
std::vector<history_point> history_or_empty(const object_reader& r, std::string_view key);
provider_status read_provider_status(const json::value& v, const path_node* at);
provider_health read_provider_health(const json::value& v, const path_node* at);
credit_update read_credits(const json::value& v, const path_node* at, const std::string& user);
user_state read_user_state(const json::value& v, const path_node* at);
std::vector<device_connection> read_devices(const object_reader& r);
welcome read_welcome(const json::value& v, const path_node* at);
ack read_ack(const json::value& v, const path_node* at);
nack read_nack(const json::value& v, const path_node* at);
refreshed read_refreshed(const json::value& v, const path_node* at);
refresh read_refresh(const json::value& v, const path_node* at);
ping read_ping(const json::value& v, const path_node* at);
void require_finite(const json::value& v, const path_node* at);
unknown_data read_unknown(const json::value* v, const path_node* at);

} // namespace kullsync::msg::detail::payload
