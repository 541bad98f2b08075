// A private PostgreSQL cluster for a test: initdb in a fresh directory under
// /tmp, the server on a random loopback port (no Unix socket outside that
// directory), stopped and removed when the object goes. Run as root (CI),
// the server's commands run as the `postgres` user that Debian's package
// creates, since PostgreSQL refuses to run as root.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace pixserve::testing {

class PgCluster {
 public:
  PgCluster() {
    bindir_ = command_output("pg_config --bindir");
    if (bindir_.empty() || !std::filesystem::exists(std::filesystem::path(bindir_) / "initdb")) {
      throw std::runtime_error("PostgreSQL's server programs are not installed (scripts/install-deps.sh installs them)");
    }
    std::string pattern = "/tmp/pixserve-pg-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    as_ = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (!as_.empty()) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root, and there is no postgres user to run the server");
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown of the cluster folder failed");
    }
    port_ = free_port();
    run(as_ + bindir_ + "/initdb -D " + dir_ + "/data -U pixserve --auth=trust -E UTF8 --locale=C --no-sync "
        "--no-instructions >" + dir_ + "/initdb.log 2>&1");
    start();
  }

  // Stops the server as an administrator's restart does (sessions are
  // told and closed), keeping its data; start() brings it back on the same
  // port.
  void stop() {
    run(as_ + bindir_ + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop >/dev/null");
    started_ = false;
  }
  void start() {
    run(as_ + bindir_ + "/pg_ctl -D " + dir_ + "/data -w -t 60 -l " + dir_ + "/server.log -o \"-p " +
        std::to_string(port_) + " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + dir_ +
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null");
    started_ = true;
  }

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  ~PgCluster() {
    if (started_) {
      const std::string stop = as_ + bindir_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop >/dev/null 2>&1";
      [[maybe_unused]] const int rc = std::system(stop.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  int port() const noexcept { return port_; }
  // The URL of database `db` (postgres: the one initdb makes).
  std::string url(const std::string& db = "postgres") const {
    return "postgresql://pixserve@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

 private:
  static std::string command_output(const std::string& cmd) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
    if (!pipe) return {};
    std::string out;
    std::array<char, 256> buf{};
    while (std::fgets(buf.data(), buf.size(), pipe.get()) != nullptr) out += buf.data();
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  void run(const std::string& cmd) const {
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("failed: " + cmd + "\n" + command_output("cat " + dir_ + "/*.log 2>/dev/null | tail -20"));
    }
  }

  // A port the kernel had free a moment ago.
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("no free loopback port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::string bindir_, dir_, as_;
  int port_ = 0;
  bool started_ = false;
};

}  // namespace pixserve::testing
