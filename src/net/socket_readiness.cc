// See socket_readiness.h. Every file that includes Asio defines the frame cache alike.
#define BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE 16
#include "net/socket_readiness.h"

#include <sys/epoll.h>

#include <cstdint>
#include <type_traits>

#include <boost/asio/detail/reactor.hpp>

namespace slipway::net {

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
namespace {

namespace detail = boost::asio::detail;
using Reactor = detail::epoll_reactor;
using State = std::remove_pointer_t<Reactor::per_descriptor_data>;
static_assert(std::is_same_v<detail::reactor, Reactor>);

// The members Asio keeps private, named through explicit instantiations (where access is not
// checked) of a template whose friend hands the member pointer out.
template <class Tag, typename Tag::Type kMember>
struct Expose {
  friend typename Tag::Type Member(Tag) { return kMember; }
};
#define SLIPWAY_EXPOSE(TagName, MemberType, Class, Field)         \
  struct TagName {                                                \
    using Type = MemberType Class::*;                             \
    friend Type Member(TagName);                                  \
  };                                                              \
  template struct Expose<TagName, &Class::Field>;

using BasicSocket = boost::asio::basic_socket<boost::asio::ip::tcp, boost::asio::any_io_executor>;
using SocketImpl = detail::io_object_impl<detail::reactive_socket_service<boost::asio::ip::tcp>,
                                          boost::asio::any_io_executor>;
SLIPWAY_EXPOSE(SocketImplTag, SocketImpl, BasicSocket, impl_)
SLIPWAY_EXPOSE(ReactorTag, Reactor*, State, reactor_)
SLIPWAY_EXPOSE(EpollFdTag, int, Reactor, epoll_fd_)
SLIPWAY_EXPOSE(RegisteredTag, uint32_t, State, registered_events_)
using PerOp = bool[Reactor::max_ops];
SLIPWAY_EXPOSE(SpeculativeTag, PerOp, State, try_speculative_)
// The events of the reactor's last report for the descriptor (its completion's argument).
SLIPWAY_EXPOSE(LastEventsTag, unsigned int, detail::scheduler_operation, task_result_)
#undef SLIPWAY_EXPOSE

State* StateOf(boost::asio::ip::tcp::socket& socket) {
  BasicSocket& base = socket;
  return (base.*Member(SocketImplTag{})).get_implementation().reactor_data_;
}

}  // namespace

void TrackPeerClose(boost::asio::ip::tcp::socket& socket) {
  State* state = StateOf(socket);
  if (state == nullptr) return;
  uint32_t& registered = state->*Member(RegisteredTag{});
  if (registered == 0 || (registered & EPOLLRDHUP) != 0) return;  // not on epoll, or done
  epoll_event ev{};
  ev.events = registered | EPOLLRDHUP;
  ev.data.ptr = state;
  int epoll_fd = (state->*Member(ReactorTag{}))->*Member(EpollFdTag{});
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, socket.native_handle(), &ev) == 0) registered = ev.events;
}

void ReadCameUpShort(boost::asio::ip::tcp::socket& socket) {
  State* state = StateOf(socket);
  if (state == nullptr || (state->*Member(RegisteredTag{}) & EPOLLRDHUP) == 0) return;
  // A C-style cast, as the reactor's state derives privately from its operation type.
  auto* op = (detail::scheduler_operation*)state;  // NOLINT(google-readability-casting)
  if ((op->*Member(LastEventsTag{}) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) return;
  (state->*Member(SpeculativeTag{}))[Reactor::read_op] = false;
}

#else
void TrackPeerClose(boost::asio::ip::tcp::socket&) {}
void ReadCameUpShort(boost::asio::ip::tcp::socket&) {}
#endif

}  // namespace slipway::net
