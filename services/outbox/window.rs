//! The relay's window of published, unconfirmed changes.
//!
//! RabbitMQ confirms persistent messages when it syncs them to disk, 100–150 ms under load: a relay that waits for
//! the confirms before publishing more publishes one window per sync. The window keeps up to `max` changes
//! published and unconfirmed while more are read and sent. Confirms may arrive in any order; the window reports
//! only the confirmed **prefix** in log order, which is what the checkpoint may move over. When the broker
//! refuses a change or the channel fails, [`Window::rewind`] gives the point to republish from: everything after
//! the confirmed prefix is sent again (duplicates allowed, never a gap).
//!
//! Changes may also be published **ahead** ([`Window::send_ahead`]): committed, but above the watermark, so an
//! older transaction may still add changes before them in log order (docs/relay.md, "Publishing ahead of the
//! watermark"). They wait beside the window, published, until the log reaches them in order; then
//! [`Window::send`] takes them in without publishing them again, and only from there can their confirms move the
//! checkpoint. A rewind forgets them too, so they are sent again after it.
//!
//! The broker is behind [`Publish`], so the window's logic is tested with a fake one (confirms out of order,
//! nacks and a channel closed mid-window); `publisher.rs` implements it for lapin.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::log::{Checkpoint, LoggedChange};

/// What the broker said about one published change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Stored and routed.
    Acked,
    /// Stored nowhere because no queue is bound for its routing key (returned under the `mandatory` flag). It
    /// counts as delivered: there is nobody to deliver it to (docs/relay.md, unroutable changes).
    Returned,
    /// Refused (a nack): the broker could not take it.
    Refused,
}

/// The broker could not be used: the channel or the connection closed, or a publish failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BrokerError(pub String);

/// A confirm on its way from the broker.
pub type Confirm = Pin<Box<dyn Future<Output = Result<Delivery, BrokerError>> + Send>>;

/// The seam between the window and the broker: publish one change and return its confirm, to be awaited later.
pub trait Publish {
    /// Publishes `change` without waiting for the broker's confirm.
    fn publish(&self, change: &LoggedChange) -> impl Future<Output = Result<Confirm, BrokerError>> + Send;
}

/// Why the window stopped: the checkpoint must go back to `confirmed` and everything after it be sent again.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// The broker refused the change after the confirmed prefix.
    #[error("the broker refused the change at position {position}")]
    Refused {
        /// The refused change's log position.
        position: i64,
    },
    /// The channel or connection failed.
    #[error("publishing failed: {0}")]
    Broker(#[from] BrokerError),
}

/// One change the broker confirmed, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The checkpoint just after the change.
    pub at: Checkpoint,
    /// Acked or returned.
    pub delivery: Delivery,
    /// Its routing key (for the unroutable log; never its body).
    pub routing_key: String,
    /// When it was published.
    pub sent_at: Instant,
}

struct Sent {
    at: Checkpoint,
    routing_key: String,
    sent_at: Instant,
    confirm: Confirm,
}

/// Published, unconfirmed changes in log order, and changes published ahead of it; at most `max` of them.
pub struct Window {
    in_flight: VecDeque<Sent>,
    ahead: BTreeMap<Checkpoint, Sent>,
    max: usize,
    confirmed: Checkpoint,
    sent: Checkpoint,
}

impl Window {
    /// An empty window after `at` (everything up to `at` is confirmed), holding at most `max` changes.
    pub fn new(at: Checkpoint, max: usize) -> Self {
        Self { in_flight: VecDeque::new(), ahead: BTreeMap::new(), max: max.max(1), confirmed: at, sent: at }
    }

    /// How many more changes may be published before a confirm must arrive.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.in_flight.len() + self.ahead.len())
    }

    /// Whether every change published in log order is confirmed (changes published ahead do not count: they are
    /// settled once the log reaches them).
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// How many changes wait, published, for the log to reach them.
    pub fn ahead(&self) -> usize {
        self.ahead.len()
    }

    /// The last change published ahead, if any waits.
    pub fn last_ahead(&self) -> Option<Checkpoint> {
        self.ahead.keys().next_back().copied()
    }

    /// The end of the confirmed prefix: the checkpoint may move here.
    pub fn confirmed(&self) -> Checkpoint {
        self.confirmed
    }

    /// The last change published (confirmed or not): reading continues after it.
    pub fn sent(&self) -> Checkpoint {
        self.sent
    }

    /// Publishes `change` (the next in log order) and keeps its confirm; a change published ahead is taken in
    /// as it was sent, not published again.
    pub async fn send(&mut self, publisher: &impl Publish, change: &LoggedChange) -> Result<(), BrokerError> {
        let sent = match self.ahead.remove(&change.checkpoint()) {
            Some(sent) => sent,
            None => Self::publish(publisher, change).await?,
        };
        self.sent = sent.at;
        self.in_flight.push_back(sent);
        Ok(())
    }

    /// Publishes `change`, which is after [`Window::sent`] but not next in log order yet (an older transaction may
    /// still be running), unless it was published ahead already. Returns whether it was published now.
    pub async fn send_ahead(&mut self, publisher: &impl Publish, change: &LoggedChange) -> Result<bool, BrokerError> {
        if change.checkpoint() <= self.sent || self.ahead.contains_key(&change.checkpoint()) {
            return Ok(false);
        }
        let sent = Self::publish(publisher, change).await?;
        self.ahead.insert(sent.at, sent);
        Ok(true)
    }

    async fn publish(publisher: &impl Publish, change: &LoggedChange) -> Result<Sent, BrokerError> {
        let confirm = publisher.publish(change).await?;
        Ok(Sent { at: change.checkpoint(), routing_key: change.change_type.clone(), sent_at: Instant::now(), confirm })
    }

    /// Waits for the oldest change's confirm and settles it; `None` when nothing is in flight. Cancel-safe: the
    /// change stays in the window until its confirm has arrived.
    pub async fn settle_next(&mut self) -> Option<Result<Settled, Stop>> {
        let front = self.in_flight.front_mut()?;
        let outcome = front.confirm.as_mut().await;
        Some(self.pop_settled(outcome))
    }

    /// Settles the confirms that have already arrived at the head of the window, without waiting: the changes
    /// settled, and why the window stopped after them, if it did.
    pub fn settle_ready(&mut self) -> (Vec<Settled>, Option<Stop>) {
        let mut settled = Vec::new();
        let mut context = Context::from_waker(Waker::noop());
        while let Some(front) = self.in_flight.front_mut() {
            match front.confirm.as_mut().poll(&mut context) {
                Poll::Ready(outcome) => match self.pop_settled(outcome) {
                    Ok(one) => settled.push(one),
                    Err(stop) => return (settled, Some(stop)),
                },
                Poll::Pending => break,
            }
        }
        (settled, None)
    }

    /// Takes the oldest change out of the window with its broker `outcome`; on a refusal or a broker error the
    /// caller rewinds, so the confirmed prefix stays where it was.
    fn pop_settled(&mut self, outcome: Result<Delivery, BrokerError>) -> Result<Settled, Stop> {
        let sent = self.in_flight.pop_front().ok_or_else(|| BrokerError("a confirm without a change".into()))?;
        match outcome? {
            Delivery::Refused => Err(Stop::Refused { position: sent.at.position }),
            delivery => {
                self.confirmed = sent.at;
                Ok(Settled { at: sent.at, delivery, routing_key: sent.routing_key, sent_at: sent.sent_at })
            }
        }
    }

    /// Forgets every unconfirmed change (and every change published ahead) and returns the point to republish
    /// from (the confirmed prefix's end).
    pub fn rewind(&mut self) -> Checkpoint {
        self.in_flight.clear();
        self.ahead.clear();
        self.sent = self.confirmed;
        self.confirmed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::oneshot;
    use uuid::Uuid;

    use super::*;

    /// How the test answers one published change.
    type Answer = oneshot::Sender<Result<Delivery, BrokerError>>;

    /// A broker whose confirms the test hands out, in any order; it can also refuse to publish (a closed channel).
    #[derive(Default)]
    struct FakeBroker {
        confirms: Mutex<Vec<(i64, Answer)>>,
        published: Mutex<Vec<i64>>,
        closed: Mutex<bool>,
    }

    impl FakeBroker {
        fn answer(&self, position: i64, outcome: Result<Delivery, BrokerError>) {
            let mut confirms = self.confirms.lock().expect("lock");
            let index = confirms.iter().position(|(p, _)| *p == position).expect("a pending confirm");
            let (_, sender) = confirms.remove(index);
            let _ = sender.send(outcome);
        }

        /// The channel closes: publishing fails and every pending confirm is lost.
        fn close(&self) {
            *self.closed.lock().expect("lock") = true;
            self.confirms.lock().expect("lock").clear();
        }
    }

    impl Publish for FakeBroker {
        fn publish(&self, change: &LoggedChange) -> impl Future<Output = Result<Confirm, BrokerError>> + Send {
            let result = if *self.closed.lock().expect("lock") {
                Err(BrokerError("channel closed".into()))
            } else {
                let (sender, receiver) = oneshot::channel();
                self.confirms.lock().expect("lock").push((change.position, sender));
                self.published.lock().expect("lock").push(change.position);
                let confirm: Confirm = Box::pin(async move {
                    receiver.await.map_err(|_| BrokerError("channel closed before the confirm".into()))?
                });
                Ok(confirm)
            };
            std::future::ready(result)
        }
    }

    fn change(position: i64) -> LoggedChange {
        LoggedChange {
            position,
            txid: 100 + position,
            change_id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            aggregate_type: "event".into(),
            aggregate_id: Uuid::from_u128(position as u128 % 3),
            change_type: "event.created".into(),
            payload: "{}".into(),
            actor_key_id: None,
            traceparent: None,
            tracestate: None,
            created_at: chrono::Utc::now(),
        }
    }

    fn at(position: i64) -> Checkpoint {
        Checkpoint { txid: 100 + position, position }
    }

    async fn send_all(window: &mut Window, broker: &FakeBroker, positions: std::ops::RangeInclusive<i64>) {
        for position in positions {
            window.send(broker, &change(position)).await.expect("send");
        }
    }

    #[tokio::test]
    async fn confirms_out_of_order_move_the_checkpoint_over_the_prefix_only() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 10);
        send_all(&mut window, &broker, 1..=5).await;
        assert_eq!(window.room(), 5);
        for position in [3, 1, 4] {
            broker.answer(position, Ok(Delivery::Acked));
        }
        let (settled, stop) = window.settle_ready();
        assert!(stop.is_none());
        assert_eq!(settled.iter().map(|s| s.at.position).collect::<Vec<_>>(), vec![1], "2 is not confirmed yet");
        assert_eq!(window.confirmed(), at(1));
        broker.answer(2, Ok(Delivery::Acked));
        let (settled, _) = window.settle_ready();
        assert_eq!(settled.iter().map(|s| s.at.position).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(window.confirmed(), at(4));
        broker.answer(5, Ok(Delivery::Acked));
        let last = window.settle_next().await.expect("one in flight").expect("acked");
        assert_eq!(last.at, at(5));
        assert!(window.is_empty() && window.settle_next().await.is_none());
        assert_eq!(window.sent(), at(5));
    }

    #[tokio::test]
    async fn a_nack_in_the_middle_rewinds_to_the_confirmed_prefix() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 10);
        send_all(&mut window, &broker, 1..=6).await;
        broker.answer(1, Ok(Delivery::Acked));
        broker.answer(2, Ok(Delivery::Acked));
        broker.answer(3, Ok(Delivery::Refused));
        broker.answer(4, Ok(Delivery::Acked));
        let (settled, stop) = window.settle_ready();
        assert_eq!(settled.iter().map(|s| s.at.position).collect::<Vec<_>>(), vec![1, 2]);
        assert!(matches!(stop, Some(Stop::Refused { position: 3 })), "{stop:?}");
        assert_eq!(window.confirmed(), at(2), "1 and 2 were settled before the refusal");
        let resume = window.rewind();
        assert_eq!(resume, at(2), "republish from after 2: 3 (refused), 4 (acked but after it) and 5, 6 again");
        assert!(window.is_empty());
        assert_eq!(window.sent(), at(2), "reading continues from the resume point");
    }

    #[tokio::test]
    async fn a_returned_change_counts_as_delivered() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 10);
        send_all(&mut window, &broker, 1..=2).await;
        broker.answer(1, Ok(Delivery::Returned));
        broker.answer(2, Ok(Delivery::Acked));
        let (settled, _) = window.settle_ready();
        assert_eq!(settled[0].delivery, Delivery::Returned);
        assert_eq!(settled[0].routing_key, "event.created");
        assert_eq!(window.confirmed(), at(2), "the checkpoint moves past an unroutable change");
    }

    #[tokio::test]
    async fn a_channel_closed_mid_window_stops_at_the_confirmed_prefix() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 10);
        send_all(&mut window, &broker, 1..=4).await;
        broker.answer(1, Ok(Delivery::Acked));
        broker.close();
        assert!(window.send(&broker, &change(5)).await.is_err(), "publishing on a closed channel fails");
        let first = window.settle_next().await.expect("in flight").expect("1 was acked");
        assert_eq!(first.at, at(1));
        let lost = window.settle_next().await.expect("in flight");
        assert!(matches!(lost, Err(Stop::Broker(_))), "{lost:?}");
        assert_eq!(window.rewind(), at(1));
    }

    #[tokio::test]
    async fn the_window_holds_at_most_max_changes() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 3);
        send_all(&mut window, &broker, 1..=3).await;
        assert_eq!(window.room(), 0);
        broker.answer(1, Ok(Delivery::Acked));
        window.settle_next().await.expect("in flight").expect("acked");
        assert_eq!(window.room(), 1);
    }

    #[tokio::test]
    async fn a_change_published_ahead_goes_out_once_and_checkpoints_in_log_order() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 3);
        send_all(&mut window, &broker, 1..=1).await;
        // 2's transaction is still running; 3 is committed: it goes out now, once.
        assert!(window.send_ahead(&broker, &change(3)).await.expect("ahead"));
        assert!(!window.send_ahead(&broker, &change(3)).await.expect("ahead"), "not twice");
        assert_eq!((window.ahead(), window.room(), window.sent()), (1, 1, at(1)), "reading goes on after 1");
        assert_eq!(window.last_ahead(), Some(at(3)));
        broker.answer(3, Ok(Delivery::Acked));
        broker.answer(1, Ok(Delivery::Acked));
        let (settled, _) = window.settle_ready();
        assert_eq!(settled.iter().map(|s| s.at.position).collect::<Vec<_>>(), vec![1]);
        assert_eq!(window.confirmed(), at(1), "3 is confirmed, but 2 comes before it");
        // 2 commits: the log now reads 2, 3 in order; 3 is taken in as sent.
        send_all(&mut window, &broker, 2..=3).await;
        assert_eq!(*broker.published.lock().expect("lock"), vec![1, 3, 2]);
        assert_eq!(window.ahead(), 0);
        broker.answer(2, Ok(Delivery::Acked));
        let (settled, _) = window.settle_ready();
        assert_eq!(settled.iter().map(|s| s.at.position).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(window.confirmed(), at(3));
        assert!(!window.send_ahead(&broker, &change(3)).await.expect("ahead"), "nothing before the window's end");
    }

    #[tokio::test]
    async fn a_rewind_forgets_changes_published_ahead() {
        let broker = FakeBroker::default();
        let mut window = Window::new(at(0), 10);
        send_all(&mut window, &broker, 1..=1).await;
        window.send_ahead(&broker, &change(3)).await.expect("ahead");
        broker.answer(1, Ok(Delivery::Refused));
        assert!(matches!(window.settle_ready().1, Some(Stop::Refused { position: 1 })));
        assert_eq!(window.rewind(), at(0));
        assert_eq!(window.ahead(), 0, "republished after the rewind like the rest");
        send_all(&mut window, &broker, 1..=3).await;
        assert_eq!(*broker.published.lock().expect("lock"), vec![1, 3, 1, 2, 3]);
    }

    /// A relay over an in-memory log through a broker that answers in random order and fails at random (nacks,
    /// closed channels), publishing some changes ahead of the watermark, restarting from the saved checkpoint each
    /// time, as the relay does: every change is
    /// acked at least once, and in what the broker stored (publication order, refused changes left out, changes
    /// unconfirmed when the channel closed counted as stored: the worst case) the last copy of each resource's
    /// changes comes in log order.
    #[tokio::test]
    async fn random_faults_lose_nothing_and_keep_each_resources_last_order() {
        let log: Vec<LoggedChange> = (1..=300).map(change).collect();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut saved = at(0);
        let (mut acked, mut stored) = (std::collections::HashSet::new(), Vec::new());
        let (mut restarts, mut ahead_sent) = (0, 0);
        while saved.position < 300 {
            restarts += 1;
            assert!(restarts < 1000, "no progress");
            let broker = FakeBroker::default();
            let mut refused = std::collections::HashSet::new();
            let mut window = Window::new(saved, 1 + next(40) as usize);
            let failed = 'run: loop {
                // The watermark lets the relay read a few changes in order at a time...
                let watermark = (window.sent().position + 1 + next(6) as i64).min(300);
                while window.room() > 0 && window.sent().position < watermark {
                    let change = &log[window.sent().position as usize];
                    if window.send(&broker, change).await.is_err() {
                        break 'run true;
                    }
                }
                // ...and the next ones, committed but held back, may go out ahead: one or two past the next in
                // order, never one whose resource has an earlier change still to send (the advisory lock makes
                // that impossible in the database: docs/relay.md).
                for skip in [2, 3] {
                    let position = window.sent().position + skip;
                    if position <= 300 && window.room() > 0 && next(2) == 0 {
                        match window.send_ahead(&broker, &log[position as usize - 1]).await {
                            Ok(sent) => ahead_sent += usize::from(sent),
                            Err(_) => break 'run true,
                        }
                    }
                }
                // The broker answers some pending confirms, in random order; now and then it fails.
                let pending: Vec<i64> = broker.confirms.lock().expect("lock").iter().map(|(p, _)| *p).collect();
                for position in pending {
                    match next(100) {
                        0 => {
                            refused.insert(position);
                            broker.answer(position, Ok(Delivery::Refused));
                        }
                        1 => {
                            broker.close();
                            break;
                        }
                        2..=60 => {
                            acked.insert(position);
                            broker.answer(position, Ok(Delivery::Acked));
                        }
                        _ => {}
                    }
                }
                // Back to the runtime, as the relay's reads do: tokio's cooperative budget would otherwise make the
                // receivers report Pending forever.
                tokio::task::yield_now().await;
                if window.settle_ready().1.is_some() {
                    break true;
                }
                if window.is_empty() && window.sent().position >= 300 {
                    break false;
                }
            };
            saved = if failed { window.rewind() } else { window.confirmed() };
            let published = broker.published.lock().expect("lock").clone();
            stored.extend(published.into_iter().filter(|p| !refused.contains(p)));
        }
        assert!(restarts > 1, "the run met faults");
        assert!(ahead_sent > 50, "changes went out ahead of the watermark: {ahead_sent}");
        for position in 1..=300 {
            assert!(acked.contains(&position), "change {position} was confirmed by the broker");
        }
        let mut last: Vec<i64> = Vec::new();
        for position in stored.iter().rev() {
            if !last.contains(position) {
                last.push(*position);
            }
        }
        last.reverse();
        for resource in 0..3 {
            let order: Vec<i64> = last.iter().copied().filter(|p| p % 3 == resource).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "resource {resource}: {order:?}");
        }
    }
}
