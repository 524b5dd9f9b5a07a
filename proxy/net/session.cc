#include "proxy/net/session.h"

namespace corral::net {
namespace {

bool inMulti(Tx t) { return t == Tx::kMulti || t == Tx::kMultiDirty; }

Step stay(SessionState s, Route r) { return Step{s, r, Conn::kKeep, false}; }
Step waitFor(SessionState s) { return Step{s, Route::kNone, Conn::kKeep, true}; }
Step refuseInTx(SessionState s) {
  // Redis aborts a transaction at EXEC when a command was refused while queueing.
  if (inMulti(s.tx)) s.tx = Tx::kMultiDirty;
  return stay(s, Route::kRefuse);
}

// A state with a dedicated connection enters `link` (or a transaction), keeping it; from the
// shared link, one is acquired first, once the requests sent on shared connections are in.
Step enter(SessionState s, Link link, Tx tx, bool idle) {
  if (s.link == Link::kShared) {
    if (!idle) return waitFor(s);
    return Step{{link, tx}, Route::kDedicated, Conn::kAcquire, false};
  }
  return Step{{link, tx}, Route::kDedicated, Conn::kKeep, false};
}

// The RESP2 subscribed context: Redis refuses all but (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET.
// Whether the server is still subscribed is known once every earlier reply is in.
Step subscribedContext(SessionState s, bool idle) {
  if (!idle) return waitFor(s);
  return stay(s, Route::kContextError);
}

Step onCommand(SessionState s, Event e, bool idle) {
  const bool shared = s.link == Link::kShared;
  const bool subscribed = s.link == Link::kSubscribed;
  switch (e) {
    case Event::kCommand:
      return stay(s, shared ? Route::kShared : Route::kDedicated);
    case Event::kPing:
      return stay(s, shared ? Route::kLocal : Route::kDedicated);
    case Event::kLocal:
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) return stay(s, Route::kTxPlaceholder);
      // On a dedicated connection, earlier replies may still change what corral answers (an
      // EXEC that ran CLIENT SETNAME or AUTH, a SELECT): they come first.
      if (!shared && !idle) return waitFor(s);
      return stay(s, Route::kLocal);
    case Event::kSelect:
      if (subscribed) return subscribedContext(s, idle);
      // On shared connections the db picks a pool: earlier requests first, on the old one.
      if (shared) return idle ? stay(s, Route::kLocal) : waitFor(s);
      return stay(s, Route::kDedicated);  // followed when Redis says +OK (inside MULTI: at EXEC)
    case Event::kReplyMode:
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) return refuseInTx(s);
      return stay(s, Route::kLocal);
    case Event::kRefused:
      return refuseInTx(s);
    case Event::kBlocking:
      if (shared) return enter(s, Link::kDedicated, Tx::kNone, idle);
      return stay(s, Route::kDedicated);  // queued inside MULTI, refused by Redis if subscribed
    case Event::kMulti:
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) return stay(s, Route::kDedicated);  // "MULTI calls can not be nested"
      return enter(s, shared ? Link::kDedicated : s.link, Tx::kMulti, idle);
    case Event::kExec:
    case Event::kDiscard:
      if (shared) return stay(s, Route::kRefuse);  // "EXEC/DISCARD without MULTI", from corral
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) {
        const bool abort = e == Event::kExec && s.tx == Tx::kMultiDirty;
        s.tx = Tx::kNone;
        return stay(s, abort ? Route::kExecAbort : Route::kDedicated);
      }
      return stay(s, Route::kDedicated);  // Redis's "without MULTI" error; a WATCH stays
    case Event::kWatch:
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) return stay(s, Route::kDedicated);  // "WATCH inside MULTI is not allowed"
      return enter(s, shared ? Link::kDedicated : s.link, Tx::kWatch, idle);
    case Event::kUnwatch:
      if (shared) return stay(s, Route::kLocal);  // nothing watched: +OK
      if (subscribed) return subscribedContext(s, idle);
      if (s.tx == Tx::kWatch) s.tx = Tx::kNone;  // inside MULTI it is queued
      return stay(s, Route::kDedicated);
    case Event::kSubscribe:
      if (inMulti(s.tx)) return refuseInTx(s);
      if (s.link == Link::kPush || subscribed) return stay(s, Route::kDedicated);
      return enter(s, Link::kSubscribed, s.tx, idle);
    case Event::kUnsubscribe:
      if (inMulti(s.tx)) return refuseInTx(s);
      if (shared) return stay(s, Route::kLocal);  // not subscribed: "0 subscriptions" replies
      return stay(s, Route::kDedicated);
    case Event::kEnterPush:
      if (subscribed) return subscribedContext(s, idle);
      if (inMulti(s.tx)) return refuseInTx(s);
      if (s.link == Link::kPush) return stay(s, Route::kDedicated);
      return enter(s, Link::kPush, s.tx, idle);
    case Event::kReset:
      // RESET ends everything the connection holds: closing the dedicated connection does that
      // upstream (and never de-authenticates a connection corral keeps).
      if (shared) return stay(SessionState{}, Route::kLocal);
      if (!idle) return waitFor(s);
      return Step{SessionState{}, Route::kLocal, Conn::kRelease, false};
    case Event::kQuit:
      return stay({Link::kClosing, s.tx}, Route::kLocal);
    default:
      return stay(s, Route::kNone);
  }
}

}  // namespace

Step step(SessionState s, Event e, bool idle) {
  if (s.link == Link::kClosing) {
    // Nothing more is read; requests already parsed in the same packet are dropped, as Redis
    // drops what follows QUIT. Only the dedicated connection's fate matters now.
    if (e == Event::kUpstreamLost || e == Event::kClientClosed) {
      return Step{s, Route::kNone, Conn::kRelease, false};
    }
    return stay(s, Route::kNone);
  }
  const bool shared = s.link == Link::kShared;
  const bool stateful = s.tx != Tx::kNone || s.link == Link::kSubscribed || s.link == Link::kPush;
  switch (e) {
    case Event::kSubscriptionsEnded:
      if (s.link == Link::kSubscribed) s.link = Link::kDedicated;
      return stay(s, Route::kNone);
    case Event::kPushEnded:
      if (s.link == Link::kPush) s.link = Link::kDedicated;  // released once idle, as above
      return stay(s, Route::kNone);
    case Event::kIdle:
      if (s.link == Link::kDedicated && s.tx == Tx::kNone) {
        return Step{SessionState{}, Route::kNone, Conn::kRelease, false};
      }
      return stay(s, Route::kNone);
    case Event::kUpstreamLost:
      if (shared) return stay(s, Route::kNone);
      if (stateful) return Step{{Link::kClosing, s.tx}, Route::kNone, Conn::kCloseClient, false};
      return Step{SessionState{}, Route::kNone, Conn::kRelease, false};
    case Event::kDrain:
      // Idle shared clients close now, busy ones once answered; a dedicated connection (a
      // blocked pop, a subscriber, a transaction) is cut now: nothing it holds is lost by that.
      if (shared) return stay({Link::kClosing, Tx::kNone}, Route::kNone);
      return Step{{Link::kClosing, s.tx}, Route::kNone, Conn::kCloseClient, false};
    case Event::kClientClosed:
      return Step{
          {Link::kClosing, s.tx}, Route::kNone, shared ? Conn::kKeep : Conn::kRelease, false};
    default:
      return onCommand(s, e, idle);
  }
}

std::string_view linkName(Link l) {
  switch (l) {
    case Link::kShared:
      return "shared";
    case Link::kDedicated:
      return "dedicated";
    case Link::kSubscribed:
      return "subscribed";
    case Link::kPush:
      return "push";
    case Link::kClosing:
      return "closing";
  }
  return "?";
}

std::string_view txName(Tx t) {
  switch (t) {
    case Tx::kNone:
      return "-";
    case Tx::kWatch:
      return "watch";
    case Tx::kMulti:
      return "multi";
    case Tx::kMultiDirty:
      return "multi-dirty";
  }
  return "?";
}

std::string_view eventName(Event e) {
  static constexpr std::string_view kNames[kEventCount] = {
      "command",    "ping",         "local",
      "select",     "reply-mode",   "refused",
      "blocking",   "multi",        "exec",
      "discard",    "watch",        "unwatch",
      "subscribe",  "unsubscribe",  "enter-push",
      "reset",      "quit",         "subscriptions-ended",
      "push-ended", "idle",         "upstream-lost",
      "drain",      "client-closed"};
  const auto i = static_cast<size_t>(e);
  return i < static_cast<size_t>(kEventCount) ? kNames[i] : "?";
}

}  // namespace corral::net
