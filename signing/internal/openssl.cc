#include "signing/internal/openssl.h"

#include <openssl/err.h>

namespace sigil::signing::internal {

core::Status OpenSslError(std::string_view context, core::Code code, std::string reason) {
  std::string message(context);
  bool first = true;
  unsigned long err;
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    message += first ? ": " : "; ";
    message += buf;
    first = false;
  }
  return core::Status(code, std::move(message), std::move(reason));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

BioPtr MemoryBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace sigil::signing::internal
