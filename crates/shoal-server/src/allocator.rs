//! The allocator: given one range and the cluster's nodes, the next replica change to make.
//!
//! A pure function, so every rule is tested on its own; the replicate queue
//! (the `replicate_queue` module) gathers the inputs and carries the answer out, one change per
//! range at a time. In order of urgency:
//!
//! ```text
//!   1. a joint configuration left by an interrupted change     → finish it
//!   2. a stray learner (an interrupted addition)                → remove it
//!   3. fewer good voters than the replication factor            → add one (replacing a bad
//!                                                                  voter in the same change)
//!   4. more voters than the factor, or a bad voter to spare     → remove one
//!   5. the leaseholder is draining or decommissioning           → hand the lease away
//!   6. replica counts differ by 2 or more                       → move a replica
//!   7. the lease's node serves more than another voter's node
//!      by over 1.5 × this range's QPS                           → move the lease (load)
//!   8. lease counts differ by 2 or more, and the target would
//!      not end up busier than the leaseholder                   → move the lease (count)
//! ```
//!
//! A *bad* voter is on a node that is dead or decommissioning. Targets are live, active nodes
//! without a replica of the range, fewest replicas first; removals prefer bad voters, then the
//! most loaded node. The leaseholder never removes itself: it hands the lease over first.
//!
//! # Out of scope
//!
//! Load-based (QPS) replica placement, localities and constraints. Counts come from gossip and
//! lag a little; the 2-replica threshold keeps ranges from bouncing between nodes meanwhile.

use std::collections::BTreeMap;

/// Load below this many requests per second is background noise (liveness heartbeats, meta
/// lookups): leases do not move for it.
pub const MIN_BALANCED_QPS: f64 = 10.0;

/// What the allocator knows of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeInfo {
    /// Live per its liveness record.
    pub live: bool,
    /// Being decommissioned: receives nothing, keeps nothing.
    pub decommissioning: bool,
    /// Handing its leases away.
    pub draining: bool,
    /// Replicas it hosts.
    pub replicas: u64,
    /// Leases it holds.
    pub leases: u64,
    /// Requests per second its leases serve.
    pub qps: f64,
}

impl NodeInfo {
    fn usable(&self) -> bool {
        self.live && !self.decommissioning
    }
}

/// One replica of the range being planned: its replica id and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The replica id.
    pub replica_id: u64,
    /// The node hosting it.
    pub node_id: u64,
}

/// The range being planned, as its leaseholder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeInfo {
    /// The voters.
    pub voters: Vec<Member>,
    /// The learners.
    pub learners: Vec<Member>,
    /// The leaseholder's replica id (the planner runs on it).
    pub leaseholder: u64,
    /// Whether a joint configuration is in force.
    pub joint: bool,
    /// Requests per second the range serves.
    pub qps: f64,
}

/// The next change to make to a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    Nothing,
    /// Leave a joint configuration.
    FinishJoint,
    /// Remove a learner.
    RemoveLearner {
        /// The learner's replica id.
        replica_id: u64,
    },
    /// Add a voter on `node_id`, replacing voter `remove` in the same change if given.
    AddVoter {
        /// Where the new replica goes.
        node_id: u64,
        /// The voter it replaces.
        remove: Option<u64>,
    },
    /// Remove a voter.
    RemoveVoter {
        /// Its replica id.
        replica_id: u64,
    },
    /// Hand the lease to another voter.
    TransferLease {
        /// The voter's replica id.
        replica_id: u64,
    },
}

/// Why an [`Action`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing to do.
    Balanced,
    /// A joint configuration was left behind.
    FinishJoint,
    /// A learner was left behind.
    StrayLearner,
    /// A voter is on a dead or decommissioning node.
    ReplaceBad,
    /// Fewer voters than the replication factor.
    UpReplicate,
    /// More voters than the factor, or a bad one to spare.
    RemoveExtra,
    /// The leaseholder's node is draining or decommissioning.
    LeaseLeaving,
    /// Replica counts are uneven.
    RebalanceReplicas,
    /// Load is uneven.
    RebalanceLeaseLoad,
    /// Lease counts are uneven.
    RebalanceLeaseCount,
}

impl Reason {
    /// The reason's name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Balanced => "balanced",
            Reason::FinishJoint => "finish-joint",
            Reason::StrayLearner => "stray-learner",
            Reason::ReplaceBad => "replace-bad",
            Reason::UpReplicate => "up-replicate",
            Reason::RemoveExtra => "remove-extra",
            Reason::LeaseLeaving => "lease-leaving",
            Reason::RebalanceReplicas => "rebalance-replicas",
            Reason::RebalanceLeaseLoad => "rebalance-lease-load",
            Reason::RebalanceLeaseCount => "rebalance-lease-count",
        }
    }

    /// Whether the change only evens out the cluster (nothing is at risk without it): the
    /// replicate queue makes at most one such change per pass.
    pub fn is_rebalance(self) -> bool {
        matches!(
            self,
            Reason::RebalanceReplicas | Reason::RebalanceLeaseLoad | Reason::RebalanceLeaseCount
        )
    }
}

/// Plans the next change for `range` with replication factor `factor` over `nodes`.
pub fn plan(range: &RangeInfo, nodes: &BTreeMap<u64, NodeInfo>, factor: usize) -> Action {
    plan_with_reason(range, nodes, factor).0
}

/// [`plan`], with the reason for the change.
pub fn plan_with_reason(
    range: &RangeInfo,
    nodes: &BTreeMap<u64, NodeInfo>,
    factor: usize,
) -> (Action, Reason) {
    if range.joint {
        return (Action::FinishJoint, Reason::FinishJoint);
    }
    if let Some(learner) = range.learners.first() {
        return (Action::RemoveLearner { replica_id: learner.replica_id }, Reason::StrayLearner);
    }
    let info = |node_id: u64| nodes.get(&node_id).copied();
    let usable = |node_id: u64| info(node_id).is_some_and(|n| n.usable());
    let replicas_on = |node_id: u64| info(node_id).map_or(u64::MAX, |n| n.replicas);
    let leaseholder =
        range.voters.iter().find(|m| m.replica_id == range.leaseholder).map(|m| m.node_id);
    let holds = |node_id: u64| range.voters.iter().any(|m| m.node_id == node_id);
    let mut targets: Vec<u64> = nodes.keys().copied().filter(|&n| usable(n) && !holds(n)).collect();
    targets.sort_by_key(|&n| (replicas_on(n), n));
    // A node without a liveness record yet (just started) is not judged either way.
    let known_bad = |node_id: u64| info(node_id).is_some_and(|n| !n.usable());
    let bad: Vec<Member> = range.voters.iter().copied().filter(|m| known_bad(m.node_id)).collect();
    let good = range.voters.len() - bad.len();
    // The lease must leave before its holder can be removed.
    let lease_target = |exclude_draining: bool| {
        range
            .voters
            .iter()
            .filter(|m| m.replica_id != range.leaseholder && usable(m.node_id))
            .filter(|m| !exclude_draining || !info(m.node_id).is_some_and(|n| n.draining))
            .min_by_key(|m| (info(m.node_id).map_or(u64::MAX, |n| n.leases), m.node_id))
            .map(|m| Action::TransferLease { replica_id: m.replica_id })
    };

    // 3. Too few good voters.
    if good < factor
        && let Some(&target) = targets.first()
    {
        let remove = bad.iter().find(|m| m.replica_id != range.leaseholder).map(|m| m.replica_id);
        let reason = if remove.is_some() { Reason::ReplaceBad } else { Reason::UpReplicate };
        return (Action::AddVoter { node_id: target, remove }, reason);
    }
    // 4. Too many voters, or a bad one that can go without falling below the factor.
    if range.voters.len() > factor || (!bad.is_empty() && good >= factor) {
        let mut removable: Vec<Member> = range.voters.clone();
        removable
            .sort_by_key(|m| (!known_bad(m.node_id), std::cmp::Reverse(replicas_on(m.node_id))));
        let leaving = removable
            .iter()
            .find(|m| m.replica_id != range.leaseholder || known_bad(m.node_id))
            .copied();
        match leaving {
            Some(m) if m.replica_id != range.leaseholder => {
                return (Action::RemoveVoter { replica_id: m.replica_id }, Reason::RemoveExtra);
            }
            Some(_) => {
                if let Some(transfer) = lease_target(true).or_else(|| lease_target(false)) {
                    return (transfer, Reason::LeaseLeaving);
                }
            }
            None => {}
        }
    }
    // 5. A leaseholder on its way out.
    if let Some(node) = leaseholder.and_then(info)
        && (node.draining || node.decommissioning)
        && let Some(transfer) = lease_target(true)
    {
        return (transfer, Reason::LeaseLeaving);
    }
    // 6. Replica count balance: move from the busiest voter (never the leaseholder), above the
    // mean, to the least busy target, below it.
    let usable_nodes: Vec<&NodeInfo> = nodes.values().filter(|n| n.usable()).collect();
    let mean_replicas = usable_nodes.iter().map(|n| n.replicas as f64).sum::<f64>()
        / usable_nodes.len().max(1) as f64;
    if let (Some(busiest), Some(&target)) = (
        range
            .voters
            .iter()
            .filter(|m| m.replica_id != range.leaseholder)
            .max_by_key(|m| (replicas_on(m.node_id), m.node_id)),
        targets.first(),
    ) && replicas_on(busiest.node_id) != u64::MAX
        && replicas_on(busiest.node_id) >= replicas_on(target) + 2
        && (replicas_on(busiest.node_id) as f64) > mean_replicas
        && (replicas_on(target) as f64) < mean_replicas
    {
        let action = Action::AddVoter { node_id: target, remove: Some(busiest.replica_id) };
        return (action, Reason::RebalanceReplicas);
    }
    let Some(node) = leaseholder.and_then(info) else { return (Action::Nothing, Reason::Balanced) };
    let others = || {
        range.voters.iter().filter_map(|m| {
            let n = info(m.node_id)?;
            let eligible = m.replica_id != range.leaseholder && n.usable() && !n.draining;
            eligible.then_some((m.replica_id, n))
        })
    };
    // 7. Lease load balance: moving the lease must lower the busier of the two nodes, by a
    // margin, so a single hot range does not bounce between nodes.
    if range.qps >= MIN_BALANCED_QPS
        && let Some((replica_id, target)) =
            others().min_by(|a, b| a.1.qps.total_cmp(&b.1.qps).then(a.0.cmp(&b.0)))
        && node.qps - target.qps > 1.5 * range.qps
    {
        return (Action::TransferLease { replica_id }, Reason::RebalanceLeaseLoad);
    }
    // 8. Lease count balance, never at a real cost in load (background traffic of a few
    // requests per second, such as liveness heartbeats, does not count).
    let slack = MIN_BALANCED_QPS.max(node.qps * 0.1);
    if let Some((replica_id, _)) = others()
        .filter(|(_, n)| n.leases + 2 <= node.leases && n.qps + range.qps <= node.qps + slack)
        .min_by_key(|(id, n)| (n.leases, *id))
    {
        return (Action::TransferLease { replica_id }, Reason::RebalanceLeaseCount);
    }
    (Action::Nothing, Reason::Balanced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(replicas: u64, leases: u64) -> NodeInfo {
        NodeInfo { live: true, decommissioning: false, draining: false, replicas, leases, qps: 0.0 }
    }

    fn members(pairs: &[(u64, u64)]) -> Vec<Member> {
        pairs.iter().map(|&(replica_id, node_id)| Member { replica_id, node_id }).collect()
    }

    fn range(voters: &[(u64, u64)]) -> RangeInfo {
        RangeInfo {
            voters: members(voters),
            learners: vec![],
            leaseholder: 1,
            joint: false,
            qps: 0.0,
        }
    }

    fn cluster(counts: &[(u64, u64, u64)]) -> BTreeMap<u64, NodeInfo> {
        counts.iter().map(|&(id, replicas, leases)| (id, node(replicas, leases))).collect()
    }

    #[test]
    fn a_balanced_range_is_left_alone() {
        let nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 5, 1)]);
        assert_eq!(plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3), Action::Nothing);
    }

    #[test]
    fn a_dead_voter_is_replaced_on_the_least_loaded_node() {
        let mut nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 5, 1), (4, 9, 0), (5, 3, 0)]);
        nodes.get_mut(&3).unwrap().live = false;
        let (action, reason) = plan_with_reason(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3);
        assert_eq!(action, Action::AddVoter { node_id: 5, remove: Some(3) });
        assert_eq!(reason, Reason::ReplaceBad);
        assert!(!reason.is_rebalance());
        // A node with no liveness record yet is not judged dead.
        nodes.remove(&3);
        assert_eq!(plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3), Action::Nothing);
    }

    #[test]
    fn without_a_target_a_dead_voter_stays() {
        let mut nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 5, 1)]);
        nodes.get_mut(&3).unwrap().live = false;
        assert_eq!(plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3), Action::Nothing);
    }

    #[test]
    fn an_under_replicated_range_gains_a_voter_and_an_extra_one_loses_one() {
        let nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 4, 1)]);
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2)]), &nodes, 3),
            Action::AddVoter { node_id: 3, remove: None }
        );
        let nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 4, 1), (4, 7, 0)]);
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3), (4, 4)]), &nodes, 3),
            Action::RemoveVoter { replica_id: 4 }
        );
    }

    #[test]
    fn a_decommissioning_leaseholder_hands_its_lease_over_before_anything() {
        let mut nodes = cluster(&[(1, 5, 3), (2, 5, 2), (3, 5, 1)]);
        nodes.get_mut(&1).unwrap().decommissioning = true;
        // No target for a replacement: the lease moves to the voter with fewest leases.
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3),
            Action::TransferLease { replica_id: 3 }
        );
        // With a target, the range first gains a replica; the leaseholder stays until then.
        nodes.insert(4, node(0, 0));
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3),
            Action::AddVoter { node_id: 4, remove: None }
        );
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3), (4, 4)]), &nodes, 3),
            Action::TransferLease { replica_id: 4 }
        );
    }

    #[test]
    fn a_draining_leaseholder_moves_its_lease_to_a_node_that_is_not_draining() {
        let mut nodes = cluster(&[(1, 5, 3), (2, 5, 0), (3, 5, 1)]);
        nodes.get_mut(&1).unwrap().draining = true;
        nodes.get_mut(&2).unwrap().draining = true;
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3),
            Action::TransferLease { replica_id: 3 }
        );
    }

    #[test]
    fn replicas_and_leases_move_only_past_the_threshold() {
        let nodes = cluster(&[(1, 6, 1), (2, 6, 1), (3, 6, 1), (4, 5, 1)]);
        assert_eq!(plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3), Action::Nothing);
        let nodes = cluster(&[(1, 6, 1), (2, 6, 1), (3, 7, 1), (4, 4, 1)]);
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3),
            Action::AddVoter { node_id: 4, remove: Some(3) }
        );
        let nodes = cluster(&[(1, 5, 4), (2, 5, 2), (3, 5, 3)]);
        assert_eq!(
            plan(&range(&[(1, 1), (2, 2), (3, 3)]), &nodes, 3),
            Action::TransferLease { replica_id: 2 }
        );
    }

    #[test]
    fn a_lease_moves_by_load_only_when_that_lowers_the_busiest_node() {
        let mut nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 5, 2)]);
        nodes.get_mut(&1).unwrap().qps = 1000.0;
        nodes.get_mut(&2).unwrap().qps = 100.0;
        nodes.get_mut(&3).unwrap().qps = 50.0;
        let mut hot = range(&[(1, 1), (2, 2), (3, 3)]);
        // One range carrying all of node 1's load: moving it only moves the hot spot.
        hot.qps = 1000.0;
        assert_eq!(plan(&hot, &nodes, 3), Action::Nothing);
        // Half of it: moving it to the idlest node evens the load.
        hot.qps = 500.0;
        assert_eq!(plan(&hot, &nodes, 3), Action::TransferLease { replica_id: 3 });
        // Lease counts do not move a lease onto a busier node.
        let mut nodes = cluster(&[(1, 5, 4), (2, 5, 1), (3, 5, 2)]);
        nodes.get_mut(&2).unwrap().qps = 900.0;
        nodes.get_mut(&1).unwrap().qps = 100.0;
        nodes.get_mut(&3).unwrap().qps = 80.0;
        let mut cold = range(&[(1, 1), (2, 2), (3, 3)]);
        cold.qps = 50.0;
        assert_eq!(plan(&cold, &nodes, 3), Action::Nothing);
    }

    #[test]
    fn interrupted_changes_are_cleaned_up_first() {
        let nodes = cluster(&[(1, 5, 2), (2, 5, 2), (3, 5, 1)]);
        let mut joint = range(&[(1, 1), (2, 2), (3, 3)]);
        joint.joint = true;
        assert_eq!(plan(&joint, &nodes, 3), Action::FinishJoint);
        let mut learner = range(&[(1, 1), (2, 2), (3, 3)]);
        learner.learners = members(&[(9, 4)]);
        assert_eq!(plan(&learner, &nodes, 3), Action::RemoveLearner { replica_id: 9 });
    }
}
