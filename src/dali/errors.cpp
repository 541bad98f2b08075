#include "dali/errors.hpp"

namespace pixserve::dali {

std::string error_text(const DaliError& error, ErrorVocabulary vocabulary) {
  const std::string message = error.what();
  switch (vocabulary) {
    case ErrorVocabulary::dali: return message;
    case ErrorVocabulary::soda:
      if (error.status() == 503) return "ServiceUnavailable: " + message;
      return error.status() < 500 ? "UsageError: " + message : message;
    case ErrorVocabulary::datalink:
      return error.status() == 404 ? "NotFoundFault: " + message : message;
  }
  return message;
}

}  // namespace pixserve::dali
