#include "agent/api/resource_store.h"

#include "agent/model/json.h"

namespace nodemesh::api {

ApiError ApiErrorFromStatus(const absl::Status& status) {
  ApiError e;
  e.message.assign(status.message().data(), status.message().size());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      e.http_status = 400;
      e.type = "BadRequestException";
      break;
    case absl::StatusCode::kNotFound:
      e.http_status = 404;
      e.type = "NotFoundException";
      break;
    case absl::StatusCode::kAlreadyExists:
      e.http_status = 409;
      e.type = "ConflictException";
      break;
    case absl::StatusCode::kFailedPrecondition:
      e.http_status = 409;
      e.type = "ResourceInUseException";
      break;
    case absl::StatusCode::kResourceExhausted:
      e.http_status = 400;
      e.type = "LimitExceededException";
      break;
    case absl::StatusCode::kUnavailable:
      e.http_status = 503;
      e.type = "ServiceUnavailableException";
      break;
    case absl::StatusCode::kPermissionDenied:
      e.http_status = 403;
      e.type = "ForbiddenException";
      break;
    default:
      e.http_status = 500;
      e.type = "InternalServerErrorException";
      break;
  }
  return e;
}

admin::AdminResponse ErrorResponse(const ApiError& error) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("message");
  w.String(error.message.data(),
           static_cast<rapidjson::SizeType>(error.message.size()));
  w.EndObject();
  admin::AdminResponse r;
  r.status = error.http_status;
  r.content_type = "application/json";
  r.body.assign(buf.GetString(), buf.GetSize());
  r.headers.emplace_back("x-amzn-ErrorType", error.type);
  return r;
}

}  // namespace nodemesh::api
