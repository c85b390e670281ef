// sigil-sink: the least a server can do with an uploaded body, as a machine
// limit for bench/peers. It answers every HTTP request on a loopback port by
// receiving its body (Content-Length) in 4 MiB pieces and hashing them with
// SHA-256 on a second thread while the next piece arrives, as sigild does;
// with --write DIR it also writes each piece to a file there (and fsyncs it
// before answering). Nothing else: no routes, no metadata, no auth.
//   sigil-sink --port N [--write DIR]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <string>
#include <vector>

#include "core/digest.h"

namespace {

constexpr size_t kPiece = 4 << 20;

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Serves requests on one connection until the client closes it.
void Serve(int fd, const std::string& write_dir) {
  std::string head;
  std::vector<char> pieces[2] = {std::vector<char>(kPiece), std::vector<char>(kPiece)};
  char buf[16384];
  static uint64_t requests = 0;  // file names, across connections
  while (true) {
    size_t end;
    while ((end = head.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    uint64_t length = 0;
    for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
      if (auto at = head.find(name); at != std::string::npos && at < end) {
        length = std::strtoull(head.c_str() + at + std::strlen(name), nullptr, 10);
      }
    }
    if (head.find("Expect: 100-continue") < end) SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    std::string rest = head.substr(end + 4);
    head.clear();

    // A new file each time, as a new blob is (bench/peers removes them
    // between transfers).
    int out = -1;
    std::string path;
    if (!write_dir.empty()) {
      path = write_dir + "/sink." + std::to_string(++requests);
      out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (out < 0) std::perror(path.c_str()), std::exit(1);
    }
    sigil::core::Sha256 sha;
    std::future<void> writing;
    uint64_t received = 0;
    off_t written = 0;
    int which = 0;
    while (received < length) {
      std::vector<char>& piece = pieces[which];
      size_t filled = std::min<uint64_t>(rest.size(), length - received);
      std::memcpy(piece.data(), rest.data(), filled);
      rest.erase(0, filled);
      while (filled < piece.size() && received + filled < length) {
        ssize_t n = ::recv(fd, piece.data() + filled, std::min<uint64_t>(piece.size() - filled, length - received - filled), 0);
        if (n <= 0) return;
        filled += static_cast<size_t>(n);
      }
      received += filled;
      if (writing.valid()) writing.get();
      writing = std::async(std::launch::async, [&sha, &piece, filled, out, at = written] {
        if (out >= 0 && ::pwrite(out, piece.data(), filled, at) != static_cast<ssize_t>(filled)) std::exit(1);
        sha.Update(piece.data(), filled);
      });
      written += static_cast<off_t>(filled);
      which ^= 1;
    }
    if (writing.valid()) writing.get();
    if (out >= 0) ::fsync(out), ::close(out);
    std::string digest = sha.Finish().ToString();
    SendAll(fd, "HTTP/1.1 201 Created\r\nContent-Length: " + std::to_string(digest.size() + 1) + "\r\n\r\n" +
                    digest + "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string write_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--port") port = std::atoi(argv[i + 1]);
    else if (flag == "--write") write_dir = argv[i + 1];
  }
  if (port <= 0) {
    std::fprintf(stderr, "usage: sigil-sink --port N [--write DIR]\n");
    return 2;
  }
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listener, 16) != 0) {
    std::perror("sigil-sink: listen");
    return 1;
  }
  while (true) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Serve(fd, write_dir);
    ::close(fd);
  }
}
