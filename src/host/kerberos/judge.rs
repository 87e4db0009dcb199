//! What the directory says about this computer and the apps' SPNs ([`Directory`], read by
//! `directory.rs`), and each app's delegation verdict from it ([`judge_app`]): one holder per
//! SPN, then constrained delegation from this computer, then resource-based delegation on the
//! SPN's account to this computer or a group it is in.

use super::descriptor::{self, Access};
use super::{KerberosApp, TRUSTED_TO_AUTH_FOR_DELEGATION, Verdict};

const REMEDY_SPN: &str = "In Active Directory Users and Computers, open this connector's computer account > Delegation: select \"Trust this computer for delegation to specified services only\" and \"Use any authentication protocol\", and add the app's SPN (or, across domains, allow the connector, or a group it is in, on the SPN's account: Set-ADComputer/Set-ADUser -PrincipalsAllowedToDelegateToAccount).";

/// What the directory says about this computer and the apps' SPNs.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub allowed_to_delegate_to: Vec<String>,
    pub user_account_control: u32,
    /// This computer's `objectSid` (binary, MS-DTYP 2.4.2.2).
    pub sid: Vec<u8>,
    /// The groups it is in, from `tokenGroups` (transitive); `None` when not readable.
    pub groups: Option<Vec<Group>>,
    /// For each app SPN, every account of the domain holding it.
    pub spn_owners: Vec<SpnOwners>,
}

/// A group of the connector computer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub sid: Vec<u8>,
    /// Its `sAMAccountName`, when the domain has the group.
    pub name: Option<String>,
}

/// The accounts holding one SPN.
#[derive(Debug, Clone, Default)]
pub struct SpnOwners {
    pub spn: String,
    pub accounts: Vec<SpnAccount>,
}

/// An account holding an SPN, with its resource-based delegation.
#[derive(Debug, Clone, Default)]
pub struct SpnAccount {
    /// `sAMAccountName` (or the DN when it has none).
    pub name: String,
    /// `msDS-AllowedToActOnBehalfOfOtherIdentity` (self-relative security descriptors).
    pub descriptors: Vec<Vec<u8>>,
}

impl Directory {
    /// The SIDs resource-based delegation may name for this computer: its own and its groups'.
    fn principals(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.sid.clone())
            .chain(self.groups.iter().flatten().map(|g| g.sid.clone()))
            .collect()
    }

    /// A SID as the evidence names it: the group's name with the SID, or the SID.
    fn describe(&self, sid: &str) -> String {
        let name = self.groups.iter().flatten().find_map(|g| {
            (descriptor::sid_string(&g.sid).as_deref() == Some(sid))
                .then(|| g.name.clone())
                .flatten()
        });
        match name {
            Some(name) => format!("group {name} ({sid})"),
            None if descriptor::sid_string(&self.sid).as_deref() == Some(sid) => {
                format!("its own account ({sid})")
            }
            None => sid.to_string(),
        }
    }

    /// Whether this computer is in the Windows Authorization Access Group; `None` when its
    /// groups could not be read.
    pub fn in_authorization_access_group(&self) -> Option<bool> {
        self.groups.as_ref().map(|groups| {
            groups.iter().any(|g| {
                descriptor::sid_string(&g.sid).as_deref()
                    == Some(descriptor::AUTHORIZATION_ACCESS_GROUP)
            })
        })
    }
}

const REMEDY_DUPLICATE_SPN: &str = "Keep the SPN on one account only, the one the app's service runs as: find every holder with `setspn -Q <SPN>` (or `setspn -X` for all duplicates) and remove it from the others with `setspn -D <SPN> <account>`. A KDC cannot issue a ticket for an SPN that two accounts hold.";

/// The warning when this computer is not in the Windows Authorization Access Group.
pub(super) fn authorization_access_group_warning(account: &str) -> String {
    format!(
        "{account} is not a member of the Windows Authorization Access Group (S-1-5-32-560), whose members may read users' tokenGroupsGlobalAndUniversal: unless another grant gives it that access (domain hardening often removes it), Kerberos single sign-on fails with \"Forbidden\". Add it: Add-ADGroupMember -Identity 'Windows Authorization Access Group' -Members '{account}', then restart the connector host"
    )
}

/// One app's verdict from the directory.
pub fn judge_app(account: &str, d: &Directory, app: &KerberosApp) -> Verdict {
    let owners = d
        .spn_owners
        .iter()
        .find(|o| o.spn.eq_ignore_ascii_case(&app.spn))
        .map_or(&[][..], |o| o.accounts.as_slice());
    if owners.len() > 1 {
        let names = owners
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        return Verdict::fail(
            format!(
                "duplicate SPN: {} is held by {} accounts, {names}: the KDC cannot tell which one the app runs as, so the connector gets no ticket for it",
                app.spn,
                owners.len()
            ),
            REMEDY_DUPLICATE_SPN,
        );
    }
    if d.allowed_to_delegate_to
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&app.spn))
    {
        return if d.user_account_control & TRUSTED_TO_AUTH_FOR_DELEGATION != 0 {
            Verdict::Pass
        } else {
            Verdict::fail(
                format!(
                    "{account} may delegate to {} but not with \"Use any authentication protocol\", which App Proxy needs (users sign in to Entra ID, not with Kerberos)",
                    app.spn
                ),
                REMEDY_SPN,
            )
        };
    }
    let Some(owner) = owners.first() else {
        return Verdict::not_evaluated(format!(
            "{} is not in {account}'s msDS-AllowedToDelegateTo and no account of this domain holds it: if it belongs to another domain, resource-based delegation there cannot be read from here",
            app.spn
        ));
    };
    let principals = d.principals();
    let found = owner
        .descriptors
        .iter()
        .map(|sd| descriptor::access(sd, &principals))
        .find(|a| *a != Access::NotListed);
    match found {
        Some(Access::Allowed(_)) => Verdict::Pass,
        Some(Access::Denied(sid)) => Verdict::fail(
            format!(
                "{}'s resource-based delegation (msDS-AllowedToActOnBehalfOfOtherIdentity) denies {account} through {}",
                owner.name,
                d.describe(&sid)
            ),
            REMEDY_SPN,
        ),
        _ if d.groups.is_none() && !owner.descriptors.is_empty() => {
            Verdict::not_evaluated(format!(
                "{} is held by {}, whose resource-based delegation does not name {account} itself; {account}'s groups (tokenGroups) could not be read, so whether it names one of them is unknown",
                app.spn, owner.name
            ))
        }
        _ => Verdict::fail(
            format!(
                "{} is not in {account}'s msDS-AllowedToDelegateTo, and {}, the account holding it, does not allow {account} or any of its groups by resource-based delegation: the connector cannot get a ticket for it (event 13019/13020)",
                app.spn, owner.name
            ),
            REMEDY_SPN,
        ),
    }
}
