#pragma once

/// The JSON keys of the wire protocol's messages, each spelled once: the
/// codec's readers and writers, the one-pass progress reader and the
/// server's HTTP triggers (for the message fields they read and echo) all
/// name a field through this table. The keys of HTTP answers that are no
/// message's (success, seq, seqs, recipients, error) are spelled where the
/// answer is made. No dependencies.

#include <string_view>

namespace kullsync::msg::keys {

// Envelopes.
constexpr std::string_view type = "type";
constexpr std::string_view data = "data";
constexpr std::string_view payload = "payload";
constexpr std::string_view timestamp = "timestamp";
constexpr std::string_view device_id = "deviceId";
constexpr std::string_view user_id = "userId";
constexpr std::string_view messages = "messages"; // BATCH
constexpr std::string_view seq = "seq";           // v2: stream position
constexpr std::string_view id = "id";             // v2: a client message's

// v2 control messages.
constexpr std::string_view epoch = "epoch";
constexpr std::string_view recovered = "recovered";
constexpr std::string_view expires_at = "expiresAt";
constexpr std::string_view code = "code";
constexpr std::string_view error = "error";
constexpr std::string_view token = "token";

// SHOOT_PROGRESS / UPDATE_PROGRESS.
constexpr std::string_view shoot_id = "shootId";
constexpr std::string_view status = "status";
constexpr std::string_view processed_count = "processedCount";
constexpr std::string_view total_count = "totalCount";
constexpr std::string_view current_image = "currentImage";
constexpr std::string_view eta = "eta";
constexpr std::string_view provider = "provider";
constexpr std::string_view error_message = "errorMessage";

// CREDIT_UPDATE.
constexpr std::string_view new_balance = "newBalance";
constexpr std::string_view change = "change";
constexpr std::string_view reason = "reason";

// PROMPT_CHANGE (and the trigger's recipients).
constexpr std::string_view prompt_id = "promptId";
constexpr std::string_view action = "action";
constexpr std::string_view user_ids = "userIds";

// DEVICE_CONNECTED / DEVICE_DISCONNECTED.
constexpr std::string_view platform = "platform";
constexpr std::string_view device_name = "deviceName";
constexpr std::string_view connected_at = "connectedAt";

// ADMIN_SESSION_UPDATE.
constexpr std::string_view session_id = "sessionId";
constexpr std::string_view user_email = "userEmail";
constexpr std::string_view message_count = "messageCount";

// PROVIDER_HEALTH.
constexpr std::string_view providers = "providers";
constexpr std::string_view health_score = "healthScore";
constexpr std::string_view active_requests = "activeRequests";
constexpr std::string_view requests_today = "requestsToday";
constexpr std::string_view cost_today = "costToday";
constexpr std::string_view avg_latency = "avgLatency";
constexpr std::string_view success_rate = "successRate";
constexpr std::string_view error_rate = "errorRate";
constexpr std::string_view rate_limit_hits = "rateLimitHits";
constexpr std::string_view rate_limit_proximity = "rateLimitProximity";
constexpr std::string_view recent_errors = "recentErrors";
constexpr std::string_view last_error = "lastError";
constexpr std::string_view last_error_time = "lastErrorTime";
constexpr std::string_view request_history = "requestHistory";
constexpr std::string_view cost_history = "costHistory";
constexpr std::string_view error_history = "errorHistory";
constexpr std::string_view uptime_percentage = "uptimePercentage";
constexpr std::string_view last_downtime = "lastDowntime";
constexpr std::string_view value = "value"; // a history point's

// A user's state (GET /api/sync/state).
constexpr std::string_view credits = "credits";
constexpr std::string_view shoots = "shoots";
constexpr std::string_view devices = "devices";

} // namespace kullsync::msg::keys
