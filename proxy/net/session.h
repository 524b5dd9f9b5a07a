// The client session's state machine: which upstream connection a client's requests use, and
// what each command and upstream event does to it. Pure: no sockets, no libevent; the Client
// (client_session.cc) feeds it events and carries out the step it returns. Tested as a table,
// every state x every event (session_test.cc).
//
// A session has two parts. The link says where requests go:
//
//   kShared ──MULTI/WATCH/blocking──> kDedicated ──(idle, no transaction)──> kShared (released)
//      │  \──SUBSCRIBE──> kSubscribed ──(last unsubscribe confirmed)──> kDedicated
//      │   \──HELLO 3 / MONITOR / CLIENT TRACKING──> kPush   (the dedicated connection lasts for
//      │                                                        the client's life; with a cluster,
//      │                      until no push state is left: kPushEnded ──> kDedicated)
//      └──QUIT, protocol error, drain, kill──> kClosing <──dedicated connection lost under state
//
// and the transaction (kNone, kWatch, kMulti, kMultiDirty) lives on a dedicated connection. The
// dedicated connection is a pipe: every frame Redis sends on it comes back in order, and the
// session pairs replies with requests itself (pushes and pub/sub messages go straight out).
//
// Rules the table keeps (and session_test.cc checks for every cell):
// - A request goes to the dedicated connection only in a state that has one; a state that needs
//   one acquires it first (kAcquire), after the requests already sent elsewhere are answered.
// - A dedicated connection that dies under server-side state (WATCH, MULTI, subscriptions,
//   RESP3/MONITOR/tracking) ends the session visibly: its pending requests get errors and the
//   client is closed, as a direct client of a restarted Redis would be. It is never reconnected.
//   Without such state (a blocking command) the request gets an error and the session goes on
//   with shared connections.
// - In the RESP2 subscribed context Redis accepts only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING,
//   QUIT and RESET; corral's own answers wait until every earlier request is answered (then the
//   server's state is known exactly) and give Redis's context error while still subscribed.
// - On a dedicated connection corral answers its own commands once the earlier replies are in
//   (they may change the answer: an EXEC that ran CLIENT SETNAME, a SELECT).
// - Inside MULTI, commands corral answers itself are queued as a placeholder and answered at
//   EXEC; commands that would change the connection's mode (pub/sub, HELLO 3, MONITOR,
//   tracking, CLIENT REPLY) are refused and the transaction aborts at EXEC (EXECABORT).
#pragma once

#include <cstdint>
#include <string_view>

namespace corral::net {

enum class Link : uint8_t {
  kShared,      // no dedicated connection: the worker's shared, pipelined connections
  kDedicated,   // a dedicated connection without pub/sub or push state (a transaction, a
                // blocking command, or requests sent behind a state that ended)
  kSubscribed,  // RESP2 subscriptions on the dedicated connection
  kPush,        // RESP3, MONITOR or CLIENT TRACKING: the dedicated connection stays for life
                // (a cluster's RESP3 clients are on shared connections, and here only while
                // they hold subscriptions, tracking or MONITOR: kPushEnded)
  kClosing,     // nothing more is read; the client closes once its replies are out
};

enum class Tx : uint8_t {
  kNone,
  kWatch,       // WATCH active, no MULTI yet
  kMulti,       // inside MULTI (a WATCH before it ends with EXEC/DISCARD)
  kMultiDirty,  // inside MULTI, and corral refused a command: EXEC answers EXECABORT
};

struct SessionState {
  Link link = Link::kShared;
  Tx tx = Tx::kNone;
  bool operator==(const SessionState&) const = default;
};

// What the session reacts to. Commands are classified by the Client (command_kind.h plus the
// arguments); the last five come from the dedicated connection, the client socket or the
// worker.
enum class Event : uint8_t {
  kCommand,    // any other command: forwarded (Redis answers, in every state)
  kPing,       // PING, ECHO: answered by corral on shared connections, else forwarded
  kLocal,      // answered by corral (AUTH, HELLO 2, CLIENT SETNAME/GETNAME/ID/INFO/LIST/...)
  kSelect,     // SELECT: corral's on shared connections, forwarded (and followed) otherwise
  kReplyMode,  // CLIENT REPLY ON|OFF|SKIP: corral's own, never forwarded
  kRefused,    // refused by corral (SYNC, PSYNC, ..., bad arity of a state command)
  kBlocking,   // BLPOP & co, WAIT, XREAD ... BLOCK
  kMulti,
  kExec,
  kDiscard,
  kWatch,
  kUnwatch,
  kSubscribe,    // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE
  kUnsubscribe,  // UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE
  kEnterPush,    // HELLO 3, MONITOR, CLIENT TRACKING ON
  kReset,
  kQuit,
  kSubscriptionsEnded,  // a confirmation on the dedicated connection says 0 subscriptions
  kPushEnded,           // cluster: a client in kPush holds no push state any more (no subscription,
               // tracking or MONITOR), and the nodes' shared connections speak its protocol
  kIdle,          // nothing is pending on the dedicated connection any more
  kUpstreamLost,  // the dedicated connection closed, or a request on it timed out
  kDrain,         // SIGTERM: the worker is draining
  kClientClosed,  // the client's socket is gone
};
inline constexpr int kEventCount = static_cast<int>(Event::kClientClosed) + 1;

// Where a request goes.
enum class Route : uint8_t {
  kNone,           // not a request (upstream and client events), or nothing to do
  kLocal,          // corral answers now (in order with the replies still due)
  kShared,         // a shared connection
  kDedicated,      // the dedicated connection (inside MULTI: queued by Redis)
  kTxPlaceholder,  // inside MULTI: a PING holds the place, corral answers at EXEC
  kRefuse,         // corral answers an error; inside MULTI the transaction is now dirty
  kContextError,   // RESP2 subscribed: Redis's "Can't execute '<cmd>': only ..." error
  kExecAbort,      // EXEC of a dirty transaction: DISCARD upstream, EXECABORT to the client
};

// What happens to the dedicated connection.
enum class Conn : uint8_t {
  kKeep,
  kAcquire,      // get one before sending (the request waits for earlier replies first)
  kRelease,      // give it back (closing it ends whatever Redis still holds for it)
  kCloseClient,  // answer what is pending with errors, then close the client
};

struct Step {
  SessionState next;
  Route route = Route::kNone;
  Conn conn = Conn::kKeep;
  // The request must wait until every earlier request of the client is answered; the Client
  // asks again (with idle = true) then. Never set when idle was true.
  bool wait = false;
};

// The transition for `event` in state `s`. `idle`: no request of this client is pending.
Step step(SessionState s, Event event, bool idle);

// Names, for logs and test failures.
std::string_view linkName(Link l);
std::string_view txName(Tx t);
std::string_view eventName(Event e);

}  // namespace corral::net
