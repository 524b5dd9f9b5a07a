// The session state machine as a table: every state x every event (session.h).
//
// The expected table below is the specification, reviewed line by line against Redis 7.0's
// behaviour; the invariants after it hold for every cell whatever the table says, so a wrong
// edit of the table cannot hide a dangerous transition.
#include "proxy/net/session.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

namespace corral::net {
namespace {

// Every state a session can be in (a transaction lives only on a dedicated connection, and the
// RESP2 subscribed context refuses MULTI).
const std::vector<SessionState>& allStates() {
  static const std::vector<SessionState> states = {
      {Link::kShared, Tx::kNone},          {Link::kDedicated, Tx::kNone},
      {Link::kDedicated, Tx::kWatch},      {Link::kDedicated, Tx::kMulti},
      {Link::kDedicated, Tx::kMultiDirty}, {Link::kSubscribed, Tx::kNone},
      {Link::kSubscribed, Tx::kWatch},     {Link::kPush, Tx::kNone},
      {Link::kPush, Tx::kWatch},           {Link::kPush, Tx::kMulti},
      {Link::kPush, Tx::kMultiDirty},      {Link::kClosing, Tx::kNone},
  };
  return states;
}

const char* routeName(Route r) {
  static const char* const kNames[] = {"none",        "local",  "shared",        "dedicated",
                                       "placeholder", "refuse", "context-error", "exec-abort"};
  return kNames[static_cast<int>(r)];
}

const char* connName(Conn c) {
  static const char* const kNames[] = {"keep", "acquire", "release", "close-client"};
  return kNames[static_cast<int>(c)];
}

std::string stateText(SessionState s) {
  return std::string(linkName(s.link)) + "/" + std::string(txName(s.tx));
}

bool hasDedicated(Link l) {
  return l == Link::kDedicated || l == Link::kSubscribed || l == Link::kPush;
}

bool holdsServerState(SessionState s) {
  return s.tx != Tx::kNone || s.link == Link::kSubscribed || s.link == Link::kPush;
}

bool isRequest(Event e) {
  return static_cast<int>(e) < static_cast<int>(Event::kSubscriptionsEnded);
}

// One line per cell, columns as in kExpected: state, event, "->", next state, route, conn, and
// "(waits when busy)" when the transition must wait for earlier replies.
std::vector<std::vector<std::string>> actualTable() {
  std::vector<std::vector<std::string>> rows;
  for (SessionState s : allStates()) {
    for (int i = 0; i < kEventCount; ++i) {
      const auto e = static_cast<Event>(i);
      const Step t = step(s, e, /*idle=*/true);
      std::vector<std::string> row = {
          stateText(s),      std::string(eventName(e)), "->",
          stateText(t.next), routeName(t.route),        connName(t.conn)};
      if (step(s, e, /*idle=*/false).wait) {
        for (const char* w : {"(waits", "when", "busy)"}) row.emplace_back(w);
      }
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::vector<std::vector<std::string>> parse(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> row;
    std::string w;
    while (words >> w) row.push_back(w);
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

// state  event  ->  next state  route  dedicated connection  [waits for earlier replies]
const char* const kExpected = R"(
shared/-               command              ->  shared/-               shared         keep
shared/-               ping                 ->  shared/-               local          keep
shared/-               local                ->  shared/-               local          keep
shared/-               select               ->  shared/-               local          keep          (waits  when  busy)
shared/-               reply-mode           ->  shared/-               local          keep
shared/-               refused              ->  shared/-               refuse         keep
shared/-               blocking             ->  dedicated/-            dedicated      acquire       (waits  when  busy)
shared/-               multi                ->  dedicated/multi        dedicated      acquire       (waits  when  busy)
shared/-               exec                 ->  shared/-               refuse         keep
shared/-               discard              ->  shared/-               refuse         keep
shared/-               watch                ->  dedicated/watch        dedicated      acquire       (waits  when  busy)
shared/-               unwatch              ->  shared/-               local          keep
shared/-               subscribe            ->  subscribed/-           dedicated      acquire       (waits  when  busy)
shared/-               unsubscribe          ->  shared/-               local          keep
shared/-               enter-push           ->  push/-                 dedicated      acquire       (waits  when  busy)
shared/-               reset                ->  shared/-               local          keep
shared/-               quit                 ->  closing/-              local          keep
shared/-               subscriptions-ended  ->  shared/-               none           keep
shared/-               push-ended           ->  shared/-               none           keep
shared/-               idle                 ->  shared/-               none           keep
shared/-               upstream-lost        ->  shared/-               none           keep
shared/-               drain                ->  closing/-              none           keep
shared/-               client-closed        ->  closing/-              none           keep
dedicated/-            command              ->  dedicated/-            dedicated      keep
dedicated/-            ping                 ->  dedicated/-            dedicated      keep
dedicated/-            local                ->  dedicated/-            local          keep          (waits  when  busy)
dedicated/-            select               ->  dedicated/-            dedicated      keep
dedicated/-            reply-mode           ->  dedicated/-            local          keep
dedicated/-            refused              ->  dedicated/-            refuse         keep
dedicated/-            blocking             ->  dedicated/-            dedicated      keep
dedicated/-            multi                ->  dedicated/multi        dedicated      keep
dedicated/-            exec                 ->  dedicated/-            dedicated      keep
dedicated/-            discard              ->  dedicated/-            dedicated      keep
dedicated/-            watch                ->  dedicated/watch        dedicated      keep
dedicated/-            unwatch              ->  dedicated/-            dedicated      keep
dedicated/-            subscribe            ->  subscribed/-           dedicated      keep
dedicated/-            unsubscribe          ->  dedicated/-            dedicated      keep
dedicated/-            enter-push           ->  push/-                 dedicated      keep
dedicated/-            reset                ->  shared/-               local          release       (waits  when  busy)
dedicated/-            quit                 ->  closing/-              local          keep
dedicated/-            subscriptions-ended  ->  dedicated/-            none           keep
dedicated/-            push-ended           ->  dedicated/-            none           keep
dedicated/-            idle                 ->  shared/-               none           release
dedicated/-            upstream-lost        ->  shared/-               none           release
dedicated/-            drain                ->  closing/-              none           close-client
dedicated/-            client-closed        ->  closing/-              none           release
dedicated/watch        command              ->  dedicated/watch        dedicated      keep
dedicated/watch        ping                 ->  dedicated/watch        dedicated      keep
dedicated/watch        local                ->  dedicated/watch        local          keep          (waits  when  busy)
dedicated/watch        select               ->  dedicated/watch        dedicated      keep
dedicated/watch        reply-mode           ->  dedicated/watch        local          keep
dedicated/watch        refused              ->  dedicated/watch        refuse         keep
dedicated/watch        blocking             ->  dedicated/watch        dedicated      keep
dedicated/watch        multi                ->  dedicated/multi        dedicated      keep
dedicated/watch        exec                 ->  dedicated/watch        dedicated      keep
dedicated/watch        discard              ->  dedicated/watch        dedicated      keep
dedicated/watch        watch                ->  dedicated/watch        dedicated      keep
dedicated/watch        unwatch              ->  dedicated/-            dedicated      keep
dedicated/watch        subscribe            ->  subscribed/watch       dedicated      keep
dedicated/watch        unsubscribe          ->  dedicated/watch        dedicated      keep
dedicated/watch        enter-push           ->  push/watch             dedicated      keep
dedicated/watch        reset                ->  shared/-               local          release       (waits  when  busy)
dedicated/watch        quit                 ->  closing/watch          local          keep
dedicated/watch        subscriptions-ended  ->  dedicated/watch        none           keep
dedicated/watch        push-ended           ->  dedicated/watch        none           keep
dedicated/watch        idle                 ->  dedicated/watch        none           keep
dedicated/watch        upstream-lost        ->  closing/watch          none           close-client
dedicated/watch        drain                ->  closing/watch          none           close-client
dedicated/watch        client-closed        ->  closing/watch          none           release
dedicated/multi        command              ->  dedicated/multi        dedicated      keep
dedicated/multi        ping                 ->  dedicated/multi        dedicated      keep
dedicated/multi        local                ->  dedicated/multi        placeholder    keep
dedicated/multi        select               ->  dedicated/multi        dedicated      keep
dedicated/multi        reply-mode           ->  dedicated/multi-dirty  refuse         keep
dedicated/multi        refused              ->  dedicated/multi-dirty  refuse         keep
dedicated/multi        blocking             ->  dedicated/multi        dedicated      keep
dedicated/multi        multi                ->  dedicated/multi        dedicated      keep
dedicated/multi        exec                 ->  dedicated/-            dedicated      keep
dedicated/multi        discard              ->  dedicated/-            dedicated      keep
dedicated/multi        watch                ->  dedicated/multi        dedicated      keep
dedicated/multi        unwatch              ->  dedicated/multi        dedicated      keep
dedicated/multi        subscribe            ->  dedicated/multi-dirty  refuse         keep
dedicated/multi        unsubscribe          ->  dedicated/multi-dirty  refuse         keep
dedicated/multi        enter-push           ->  dedicated/multi-dirty  refuse         keep
dedicated/multi        reset                ->  shared/-               local          release       (waits  when  busy)
dedicated/multi        quit                 ->  closing/multi          local          keep
dedicated/multi        subscriptions-ended  ->  dedicated/multi        none           keep
dedicated/multi        push-ended           ->  dedicated/multi        none           keep
dedicated/multi        idle                 ->  dedicated/multi        none           keep
dedicated/multi        upstream-lost        ->  closing/multi          none           close-client
dedicated/multi        drain                ->  closing/multi          none           close-client
dedicated/multi        client-closed        ->  closing/multi          none           release
dedicated/multi-dirty  command              ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  ping                 ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  local                ->  dedicated/multi-dirty  placeholder    keep
dedicated/multi-dirty  select               ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  reply-mode           ->  dedicated/multi-dirty  refuse         keep
dedicated/multi-dirty  refused              ->  dedicated/multi-dirty  refuse         keep
dedicated/multi-dirty  blocking             ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  multi                ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  exec                 ->  dedicated/-            exec-abort     keep
dedicated/multi-dirty  discard              ->  dedicated/-            dedicated      keep
dedicated/multi-dirty  watch                ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  unwatch              ->  dedicated/multi-dirty  dedicated      keep
dedicated/multi-dirty  subscribe            ->  dedicated/multi-dirty  refuse         keep
dedicated/multi-dirty  unsubscribe          ->  dedicated/multi-dirty  refuse         keep
dedicated/multi-dirty  enter-push           ->  dedicated/multi-dirty  refuse         keep
dedicated/multi-dirty  reset                ->  shared/-               local          release       (waits  when  busy)
dedicated/multi-dirty  quit                 ->  closing/multi-dirty    local          keep
dedicated/multi-dirty  subscriptions-ended  ->  dedicated/multi-dirty  none           keep
dedicated/multi-dirty  push-ended           ->  dedicated/multi-dirty  none           keep
dedicated/multi-dirty  idle                 ->  dedicated/multi-dirty  none           keep
dedicated/multi-dirty  upstream-lost        ->  closing/multi-dirty    none           close-client
dedicated/multi-dirty  drain                ->  closing/multi-dirty    none           close-client
dedicated/multi-dirty  client-closed        ->  closing/multi-dirty    none           release
subscribed/-           command              ->  subscribed/-           dedicated      keep
subscribed/-           ping                 ->  subscribed/-           dedicated      keep
subscribed/-           local                ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           select               ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           reply-mode           ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           refused              ->  subscribed/-           refuse         keep
subscribed/-           blocking             ->  subscribed/-           dedicated      keep
subscribed/-           multi                ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           exec                 ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           discard              ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           watch                ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           unwatch              ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           subscribe            ->  subscribed/-           dedicated      keep
subscribed/-           unsubscribe          ->  subscribed/-           dedicated      keep
subscribed/-           enter-push           ->  subscribed/-           context-error  keep          (waits  when  busy)
subscribed/-           reset                ->  shared/-               local          release       (waits  when  busy)
subscribed/-           quit                 ->  closing/-              local          keep
subscribed/-           subscriptions-ended  ->  dedicated/-            none           keep
subscribed/-           push-ended           ->  subscribed/-           none           keep
subscribed/-           idle                 ->  subscribed/-           none           keep
subscribed/-           upstream-lost        ->  closing/-              none           close-client
subscribed/-           drain                ->  closing/-              none           close-client
subscribed/-           client-closed        ->  closing/-              none           release
subscribed/watch       command              ->  subscribed/watch       dedicated      keep
subscribed/watch       ping                 ->  subscribed/watch       dedicated      keep
subscribed/watch       local                ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       select               ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       reply-mode           ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       refused              ->  subscribed/watch       refuse         keep
subscribed/watch       blocking             ->  subscribed/watch       dedicated      keep
subscribed/watch       multi                ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       exec                 ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       discard              ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       watch                ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       unwatch              ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       subscribe            ->  subscribed/watch       dedicated      keep
subscribed/watch       unsubscribe          ->  subscribed/watch       dedicated      keep
subscribed/watch       enter-push           ->  subscribed/watch       context-error  keep          (waits  when  busy)
subscribed/watch       reset                ->  shared/-               local          release       (waits  when  busy)
subscribed/watch       quit                 ->  closing/watch          local          keep
subscribed/watch       subscriptions-ended  ->  dedicated/watch        none           keep
subscribed/watch       push-ended           ->  subscribed/watch       none           keep
subscribed/watch       idle                 ->  subscribed/watch       none           keep
subscribed/watch       upstream-lost        ->  closing/watch          none           close-client
subscribed/watch       drain                ->  closing/watch          none           close-client
subscribed/watch       client-closed        ->  closing/watch          none           release
push/-                 command              ->  push/-                 dedicated      keep
push/-                 ping                 ->  push/-                 dedicated      keep
push/-                 local                ->  push/-                 local          keep          (waits  when  busy)
push/-                 select               ->  push/-                 dedicated      keep
push/-                 reply-mode           ->  push/-                 local          keep
push/-                 refused              ->  push/-                 refuse         keep
push/-                 blocking             ->  push/-                 dedicated      keep
push/-                 multi                ->  push/multi             dedicated      keep
push/-                 exec                 ->  push/-                 dedicated      keep
push/-                 discard              ->  push/-                 dedicated      keep
push/-                 watch                ->  push/watch             dedicated      keep
push/-                 unwatch              ->  push/-                 dedicated      keep
push/-                 subscribe            ->  push/-                 dedicated      keep
push/-                 unsubscribe          ->  push/-                 dedicated      keep
push/-                 enter-push           ->  push/-                 dedicated      keep
push/-                 reset                ->  shared/-               local          release       (waits  when  busy)
push/-                 quit                 ->  closing/-              local          keep
push/-                 subscriptions-ended  ->  push/-                 none           keep
push/-                 push-ended           ->  dedicated/-            none           keep
push/-                 idle                 ->  push/-                 none           keep
push/-                 upstream-lost        ->  closing/-              none           close-client
push/-                 drain                ->  closing/-              none           close-client
push/-                 client-closed        ->  closing/-              none           release
push/watch             command              ->  push/watch             dedicated      keep
push/watch             ping                 ->  push/watch             dedicated      keep
push/watch             local                ->  push/watch             local          keep          (waits  when  busy)
push/watch             select               ->  push/watch             dedicated      keep
push/watch             reply-mode           ->  push/watch             local          keep
push/watch             refused              ->  push/watch             refuse         keep
push/watch             blocking             ->  push/watch             dedicated      keep
push/watch             multi                ->  push/multi             dedicated      keep
push/watch             exec                 ->  push/watch             dedicated      keep
push/watch             discard              ->  push/watch             dedicated      keep
push/watch             watch                ->  push/watch             dedicated      keep
push/watch             unwatch              ->  push/-                 dedicated      keep
push/watch             subscribe            ->  push/watch             dedicated      keep
push/watch             unsubscribe          ->  push/watch             dedicated      keep
push/watch             enter-push           ->  push/watch             dedicated      keep
push/watch             reset                ->  shared/-               local          release       (waits  when  busy)
push/watch             quit                 ->  closing/watch          local          keep
push/watch             subscriptions-ended  ->  push/watch             none           keep
push/watch             push-ended           ->  dedicated/watch        none           keep
push/watch             idle                 ->  push/watch             none           keep
push/watch             upstream-lost        ->  closing/watch          none           close-client
push/watch             drain                ->  closing/watch          none           close-client
push/watch             client-closed        ->  closing/watch          none           release
push/multi             command              ->  push/multi             dedicated      keep
push/multi             ping                 ->  push/multi             dedicated      keep
push/multi             local                ->  push/multi             placeholder    keep
push/multi             select               ->  push/multi             dedicated      keep
push/multi             reply-mode           ->  push/multi-dirty       refuse         keep
push/multi             refused              ->  push/multi-dirty       refuse         keep
push/multi             blocking             ->  push/multi             dedicated      keep
push/multi             multi                ->  push/multi             dedicated      keep
push/multi             exec                 ->  push/-                 dedicated      keep
push/multi             discard              ->  push/-                 dedicated      keep
push/multi             watch                ->  push/multi             dedicated      keep
push/multi             unwatch              ->  push/multi             dedicated      keep
push/multi             subscribe            ->  push/multi-dirty       refuse         keep
push/multi             unsubscribe          ->  push/multi-dirty       refuse         keep
push/multi             enter-push           ->  push/multi-dirty       refuse         keep
push/multi             reset                ->  shared/-               local          release       (waits  when  busy)
push/multi             quit                 ->  closing/multi          local          keep
push/multi             subscriptions-ended  ->  push/multi             none           keep
push/multi             push-ended           ->  dedicated/multi        none           keep
push/multi             idle                 ->  push/multi             none           keep
push/multi             upstream-lost        ->  closing/multi          none           close-client
push/multi             drain                ->  closing/multi          none           close-client
push/multi             client-closed        ->  closing/multi          none           release
push/multi-dirty       command              ->  push/multi-dirty       dedicated      keep
push/multi-dirty       ping                 ->  push/multi-dirty       dedicated      keep
push/multi-dirty       local                ->  push/multi-dirty       placeholder    keep
push/multi-dirty       select               ->  push/multi-dirty       dedicated      keep
push/multi-dirty       reply-mode           ->  push/multi-dirty       refuse         keep
push/multi-dirty       refused              ->  push/multi-dirty       refuse         keep
push/multi-dirty       blocking             ->  push/multi-dirty       dedicated      keep
push/multi-dirty       multi                ->  push/multi-dirty       dedicated      keep
push/multi-dirty       exec                 ->  push/-                 exec-abort     keep
push/multi-dirty       discard              ->  push/-                 dedicated      keep
push/multi-dirty       watch                ->  push/multi-dirty       dedicated      keep
push/multi-dirty       unwatch              ->  push/multi-dirty       dedicated      keep
push/multi-dirty       subscribe            ->  push/multi-dirty       refuse         keep
push/multi-dirty       unsubscribe          ->  push/multi-dirty       refuse         keep
push/multi-dirty       enter-push           ->  push/multi-dirty       refuse         keep
push/multi-dirty       reset                ->  shared/-               local          release       (waits  when  busy)
push/multi-dirty       quit                 ->  closing/multi-dirty    local          keep
push/multi-dirty       subscriptions-ended  ->  push/multi-dirty       none           keep
push/multi-dirty       push-ended           ->  dedicated/multi-dirty  none           keep
push/multi-dirty       idle                 ->  push/multi-dirty       none           keep
push/multi-dirty       upstream-lost        ->  closing/multi-dirty    none           close-client
push/multi-dirty       drain                ->  closing/multi-dirty    none           close-client
push/multi-dirty       client-closed        ->  closing/multi-dirty    none           release
closing/-              command              ->  closing/-              none           keep
closing/-              ping                 ->  closing/-              none           keep
closing/-              local                ->  closing/-              none           keep
closing/-              select               ->  closing/-              none           keep
closing/-              reply-mode           ->  closing/-              none           keep
closing/-              refused              ->  closing/-              none           keep
closing/-              blocking             ->  closing/-              none           keep
closing/-              multi                ->  closing/-              none           keep
closing/-              exec                 ->  closing/-              none           keep
closing/-              discard              ->  closing/-              none           keep
closing/-              watch                ->  closing/-              none           keep
closing/-              unwatch              ->  closing/-              none           keep
closing/-              subscribe            ->  closing/-              none           keep
closing/-              unsubscribe          ->  closing/-              none           keep
closing/-              enter-push           ->  closing/-              none           keep
closing/-              reset                ->  closing/-              none           keep
closing/-              quit                 ->  closing/-              none           keep
closing/-              subscriptions-ended  ->  closing/-              none           keep
closing/-              push-ended           ->  closing/-              none           keep
closing/-              idle                 ->  closing/-              none           keep
closing/-              upstream-lost        ->  closing/-              none           release
closing/-              drain                ->  closing/-              none           keep
closing/-              client-closed        ->  closing/-              none           release
)";

TEST_CASE("session: the transition table, every state x every event") {
  const auto expected = parse(kExpected);
  const auto actual = actualTable();
  REQUIRE(actual.size() == allStates().size() * kEventCount);
  REQUIRE(expected.size() == actual.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("row " << i << ": " << actual[i][0] << " " << actual[i][1]);
    CHECK(actual[i] == expected[i]);
  }
}

TEST_CASE("session: invariants hold in every cell, idle or busy") {
  for (SessionState s : allStates()) {
    for (int i = 0; i < kEventCount; ++i) {
      const auto e = static_cast<Event>(i);
      for (bool idle : {true, false}) {
        const Step t = step(s, e, idle);
        INFO(stateText(s) << " " << eventName(e) << (idle ? " idle" : " busy") << " -> "
                          << stateText(t.next) << " " << std::string(routeName(t.route)) << " "
                          << std::string(connName(t.conn)));
        const bool has = hasDedicated(s.link);
        // Never a request on a dedicated connection the state does not have (the null
        // dedicated connection of defect 1).
        if (t.route == Route::kDedicated || t.route == Route::kTxPlaceholder ||
            t.route == Route::kExecAbort) {
          CHECK((has || t.conn == Conn::kAcquire));
        }
        if (t.conn == Conn::kAcquire) {
          CHECK(s.link == Link::kShared);
          CHECK(hasDedicated(t.next.link));
          CHECK(idle);  // acquiring waits for the requests on shared connections
        }
        if (hasDedicated(t.next.link)) CHECK((has || t.conn == Conn::kAcquire));
        // Shared connections only for a session without a dedicated one: a request never
        // bypasses the connection that holds its transaction or subscriptions.
        if (t.route == Route::kShared) CHECK(s.link == Link::kShared);
        // A transaction never outlives its dedicated connection.
        if (t.next.tx != Tx::kNone && t.next.link != Link::kClosing) {
          CHECK(hasDedicated(t.next.link));
        }
        // Leaving a dedicated connection always gives it back (no leak). Closing keeps it
        // until the client's last replies are out; the close then releases it (checked below).
        if (has && !hasDedicated(t.next.link) && t.next.link != Link::kClosing) {
          CHECK((t.conn == Conn::kRelease || t.conn == Conn::kCloseClient));
        }
        // Server-side state is never dropped silently: it ends by the client's own command
        // (EXEC, DISCARD, UNWATCH, RESET, the last unsubscribe), or the client is closed.
        if (holdsServerState(s) && !holdsServerState(t.next) && t.next.link != Link::kClosing) {
          const bool explicit_end = e == Event::kExec || e == Event::kDiscard ||
                                    e == Event::kUnwatch || e == Event::kReset ||
                                    e == Event::kSubscriptionsEnded || e == Event::kPushEnded;
          CHECK(explicit_end);
        }
        if (e == Event::kUpstreamLost && holdsServerState(s) && s.link != Link::kClosing) {
          CHECK(t.conn == Conn::kCloseClient);
          CHECK(t.next.link == Link::kClosing);
        }
        if (e == Event::kClientClosed) {
          CHECK(t.next.link == Link::kClosing);
          if (has) CHECK(t.conn == Conn::kRelease);
        }
        // A closing session handles no request; a waiting step changes nothing yet.
        if (s.link == Link::kClosing) CHECK(t.route == Route::kNone);
        if (t.wait) {
          CHECK_FALSE(idle);
          CHECK(t.next == s);
          CHECK(t.conn == Conn::kKeep);
        }
        // Upstream and client events are not requests: nothing is routed for them.
        if (!isRequest(e)) CHECK(t.route == Route::kNone);
        // Inside MULTI corral answers nothing on the spot but QUIT and RESET (Redis queues
        // everything else; corral's own answers come at EXEC).
        if ((s.tx == Tx::kMulti || s.tx == Tx::kMultiDirty) && t.route == Route::kLocal) {
          CHECK((e == Event::kQuit || e == Event::kReset));
        }
      }
    }
  }
}

TEST_CASE("session: the plain command on shared connections (the dispatch fast path)") {
  // Client::dispatch takes this step without calling step(); it must be what step() says.
  for (bool idle : {true, false}) {
    const Step t = step(SessionState{}, Event::kCommand, idle);
    CHECK(t.next == SessionState{});
    CHECK(t.route == Route::kShared);
    CHECK(t.conn == Conn::kKeep);
    CHECK_FALSE(t.wait);
  }
}

TEST_CASE("session: a dirty transaction aborts at EXEC and only there") {
  SessionState s{Link::kDedicated, Tx::kMulti};
  Step t = step(s, Event::kRefused, true);
  CHECK(t.next.tx == Tx::kMultiDirty);
  t = step(t.next, Event::kCommand, true);
  CHECK(t.next.tx == Tx::kMultiDirty);
  t = step(t.next, Event::kExec, true);
  CHECK(t.route == Route::kExecAbort);
  CHECK(t.next == SessionState{Link::kDedicated, Tx::kNone});
  t = step(t.next, Event::kIdle, true);
  CHECK(t.conn == Conn::kRelease);
  CHECK(t.next == SessionState{});
}

TEST_CASE("session: the crash sequence of defect 1 never routes to a missing connection") {
  // WATCH, the dedicated connection dies, MULTI, SUBSCRIBE: the lost WATCH closes the client.
  Step t = step(SessionState{}, Event::kWatch, true);
  CHECK(t.conn == Conn::kAcquire);
  t = step(t.next, Event::kUpstreamLost, true);
  CHECK(t.conn == Conn::kCloseClient);
  CHECK(step(t.next, Event::kMulti, true).route == Route::kNone);
  CHECK(step(t.next, Event::kSubscribe, true).route == Route::kNone);
  // A blocking command alone holds no state: its loss sends the session back to shared.
  t = step(SessionState{}, Event::kBlocking, true);
  t = step(t.next, Event::kUpstreamLost, true);
  CHECK(t.next == SessionState{});
  CHECK(step(t.next, Event::kMulti, true).conn == Conn::kAcquire);
}

}  // namespace
}  // namespace corral::net
