// Read readiness the way nginx keeps it, for sockets on Asio's epoll reactor.
//
// Asio tries every read on a socket before it waits for the reactor, and after an edge-
// triggered event it assumes the socket stays readable until a read fails. So on a keep-alive
// connection the read after each request or response, which finds the socket empty, is one
// wasted recv() that fails with EAGAIN: about 1.5 of the 3.5 recv() calls the gateway made per
// proxied request. A read that returned fewer bytes than it asked for has emptied the socket,
// and a later arrival raises a new edge, so the next read can wait for that edge at once.
//
// The exception is the peer's FIN: it can be taken with the last bytes of data, and then no edge
// follows. EPOLLRDHUP says so. Asio neither registers it nor keeps it, so TrackPeerClose adds it
// to the socket's registration, and ReadCameUpShort keeps trying reads first whenever the
// reactor's last report for the socket carried it (or an error, or a hang-up).
//
// Both reach into Asio's reactor (Boost 1.81's layout; another layout fails to compile), and both
// do nothing where the reactor is not epoll. A socket must be used from one thread only, on an
// io_context whose reactor does no per-socket locking (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO).
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace slipway::net {

// Adds EPOLLRDHUP to an open socket's registration with its reactor (one epoll_ctl).
void TrackPeerClose(boost::asio::ip::tcp::socket& socket);

// After a read on the socket returned fewer bytes than asked for: the next read waits for the
// reactor instead of trying recv() first, unless the reactor last saw the peer close.
void ReadCameUpShort(boost::asio::ip::tcp::socket& socket);

}  // namespace slipway::net
