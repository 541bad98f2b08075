#include "dali/errors.hpp"

namespace pixserve::dali {

ServiceUnavailable database_unavailable() {
  return ServiceUnavailable("the database is unavailable (restarting or unreachable); try again in a few seconds", 3);
}

std::string error_text(const DaliError& error, ErrorVocabulary vocabulary) {
  const std::string message = error.what();
  switch (vocabulary) {
    case ErrorVocabulary::dali: return message;
    case ErrorVocabulary::soda:
      if (error.status() == 503) return "ServiceUnavailable: " + message;
      return error.status() < 500 ? "UsageError: " + message : "FatalFault: " + message;
    case ErrorVocabulary::datalink:
      if (error.status() >= 500 && error.status() != 503) return "FatalFault: " + message;
      return error.status() == 404 ? "NotFoundFault: " + message : message;
  }
  return message;
}

}  // namespace pixserve::dali
