//! SMART scopes (App Launch 1.0 and 2.x): parsing, narrowing to what a client may have, and
//! the permission questions enforcement asks.

use std::fmt;

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The launch patient's compartment.
    Patient,
    /// What the signed-in user may see.
    User,
    /// A backend service: everything.
    System,
}

impl Context {
    fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// One FHIR interaction class of SMART v2 (`c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const ALL: [Permission; 5] = [
        Permission::Create,
        Permission::Read,
        Permission::Update,
        Permission::Delete,
        Permission::Search,
    ];

    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }
}

/// A set of [`Permission`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    const READ_V1: Permissions = Permissions(2 | 16);
    const WRITE_V1: Permissions = Permissions(1 | 4 | 8);
    const ALL: Permissions = Permissions(31);

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    fn intersection(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The v2 letters, in the order the spec requires (`cruds`).
    fn letters(self) -> String {
        Permission::ALL
            .iter()
            .filter(|p| self.contains(**p))
            .map(|p| p.letter())
            .collect()
    }
}

/// A scope on FHIR resources, e.g. `patient/Observation.rs?category=…|laboratory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    pub context: Context,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    pub permissions: Permissions,
    /// A granular scope's search parameters (the part after `?`), which act as a filter.
    pub query: Option<String>,
}

impl ResourceScope {
    /// Whether this scope reaches `resource_type` with `permission` in `context`.
    pub fn allows(&self, context: Context, resource_type: &str, permission: Permission) -> bool {
        self.context == context
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
            && self.permissions.contains(permission)
    }

    /// `self` limited to what `allowed` permits (`None` when nothing is left).
    fn within(&self, allowed: &ResourceScope) -> Option<ResourceScope> {
        let type_covered =
            allowed.resource_type.is_none() || allowed.resource_type == self.resource_type;
        let query_covered = allowed.query.is_none() || allowed.query == self.query;
        if allowed.context != self.context || !type_covered || !query_covered {
            return None;
        }
        let permissions = self.permissions.intersection(allowed.permissions);
        (!permissions.is_empty()).then(|| ResourceScope {
            permissions,
            ..self.clone()
        })
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource_type.as_deref().unwrap_or("*"),
            self.permissions.letters()
        )?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// One scope of a space-separated scope string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Resource {
        scope: ResourceScope,
        /// The scope as the client wrote it (v1 names are kept when granted whole).
        text: String,
    },
    Launch,
    LaunchPatient,
    LaunchEncounter,
    OpenId,
    FhirUser,
    Profile,
    OfflineAccess,
    OnlineAccess,
}

impl Scope {
    /// Parses one scope; `None` for anything Kiln does not know (such scopes are never granted).
    pub fn parse(text: &str) -> Option<Scope> {
        Some(match text {
            "launch" => Scope::Launch,
            "launch/patient" => Scope::LaunchPatient,
            "launch/encounter" => Scope::LaunchEncounter,
            "openid" => Scope::OpenId,
            "fhirUser" => Scope::FhirUser,
            "profile" => Scope::Profile,
            "offline_access" => Scope::OfflineAccess,
            "online_access" => Scope::OnlineAccess,
            _ => Scope::Resource {
                scope: parse_resource_scope(text)?,
                text: text.to_owned(),
            },
        })
    }

    pub fn resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource { scope, .. } => Some(scope),
            _ => None,
        }
    }

    /// The SMART App Launch version whose syntax a resource scope is written in: 1 for
    /// `.read`, `.write` and `.*`, 2 for `cruds` letters; `None` for other scopes.
    pub fn version(&self) -> Option<u8> {
        let Scope::Resource { text, .. } = self else {
            return None;
        };
        let target = text.split('?').next().unwrap_or(text);
        let (_, access) = target.rsplit_once('.')?;
        Some(if matches!(access, "read" | "write" | "*") {
            1
        } else {
            2
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Resource { text, .. } => text,
            Scope::Launch => "launch",
            Scope::LaunchPatient => "launch/patient",
            Scope::LaunchEncounter => "launch/encounter",
            Scope::OpenId => "openid",
            Scope::FhirUser => "fhirUser",
            Scope::Profile => "profile",
            Scope::OfflineAccess => "offline_access",
            Scope::OnlineAccess => "online_access",
        })
    }
}

fn parse_resource_scope(text: &str) -> Option<ResourceScope> {
    let (context, rest) = text.split_once('/')?;
    let context = match context {
        "patient" => Context::Patient,
        "user" => Context::User,
        "system" => Context::System,
        _ => return None,
    };
    let (target, query) = match rest.split_once('?') {
        Some((target, query)) if !query.is_empty() => (target, Some(query.to_owned())),
        Some(_) => return None,
        None => (rest, None),
    };
    let (resource_type, access) = target.split_once('.')?;
    let resource_type = match resource_type {
        "*" => None,
        name if crate::fhir::validate::is_resource_type(name) => Some(name.to_owned()),
        _ => return None,
    };
    let permissions = match access {
        "read" => Permissions::READ_V1,
        "write" => Permissions::WRITE_V1,
        "*" => Permissions::ALL,
        letters => v2_permissions(letters)?,
    };
    // v1 names cannot carry a query; a v2 query needs a concrete type.
    if query.is_some() && (matches!(access, "read" | "write" | "*") || resource_type.is_none()) {
        return None;
    }
    Some(ResourceScope {
        context,
        resource_type,
        permissions,
        query,
    })
}

/// `cruds` letters: each at most once, in that order, at least one.
fn v2_permissions(letters: &str) -> Option<Permissions> {
    let mut permissions = Permissions::default();
    let mut next = 0;
    for letter in letters.chars() {
        let position = Permission::ALL[next..]
            .iter()
            .position(|p| p.letter() == letter)?;
        permissions = permissions.union(Permissions(Permission::ALL[next + position].bit()));
        next += position + 1;
    }
    (!permissions.is_empty()).then_some(permissions)
}

/// A parsed scope string, in the client's order, without duplicates or unknown scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn parse(text: &str) -> ScopeSet {
        let mut scopes: Vec<Scope> = Vec::new();
        for scope in text.split_ascii_whitespace().filter_map(Scope::parse) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        ScopeSet(scopes)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.0.iter().filter_map(Scope::resource)
    }

    /// Whether any resource scope has this context.
    pub fn has_context(&self, context: Context) -> bool {
        self.resource_scopes().any(|s| s.context == context)
    }

    /// The part of `self` (what is asked for) that `allowed` permits: non-resource scopes
    /// when `allowed` lists them, resource scopes cut down to their covered permissions.
    pub fn within(&self, allowed: &ScopeSet) -> ScopeSet {
        let mut granted = Vec::new();
        for scope in &self.0 {
            match scope {
                Scope::Resource { scope: asked, text } => {
                    if let Some(narrowed) = narrow(asked, allowed) {
                        let text = if narrowed == *asked {
                            text.clone()
                        } else {
                            narrowed.to_string()
                        };
                        granted.push(Scope::Resource {
                            scope: narrowed,
                            text,
                        });
                    }
                }
                other if allowed.contains(other) => granted.push(other.clone()),
                _ => {}
            }
        }
        ScopeSet(granted)
    }

    /// Keeps the scopes `keep` says yes to.
    pub fn filter(&self, keep: impl Fn(&Scope) -> bool) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }
}

fn narrow(asked: &ResourceScope, allowed: &ScopeSet) -> Option<ResourceScope> {
    let permissions = allowed
        .resource_scopes()
        .filter_map(|a| asked.within(a))
        .fold(Permissions::default(), |all, s| all.union(s.permissions));
    (!permissions.is_empty()).then(|| ResourceScope {
        permissions,
        ..asked.clone()
    })
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, scope) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{scope}")?;
        }
        Ok(())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::default();
        for scope in iter {
            if !set.0.contains(&scope) {
                set.0.push(scope);
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ScopeSet {
        ScopeSet::parse(text)
    }

    #[test]
    fn parses_v1_and_v2_names() {
        let v1 = set("patient/Observation.read");
        let scope = v1.resource_scopes().next().unwrap();
        assert!(scope.allows(Context::Patient, "Observation", Permission::Read));
        assert!(scope.allows(Context::Patient, "Observation", Permission::Search));
        assert!(!scope.allows(Context::Patient, "Observation", Permission::Create));
        assert!(!scope.allows(Context::User, "Observation", Permission::Read));
        assert!(!scope.allows(Context::Patient, "Condition", Permission::Read));

        let v2 = set("user/*.cud");
        let scope = v2.resource_scopes().next().unwrap();
        assert!(scope.allows(Context::User, "Condition", Permission::Update));
        assert!(!scope.allows(Context::User, "Condition", Permission::Read));

        let write = set("system/Patient.write");
        let scope = write.resource_scopes().next().unwrap();
        assert_eq!(scope.permissions, Permissions::WRITE_V1);
        assert_eq!(scope.to_string(), "system/Patient.cud");
    }

    #[test]
    fn refuses_malformed_scopes() {
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.",
            "patient/Observation.x",
            "patient/Nonsense.rs",
            "doctor/Observation.rs",
            "patient/*.rs?category=x",
            "patient/Observation.read?category=x",
            "patient/Observation.rs?",
            "patient",
            "",
        ] {
            assert!(Scope::parse(bad).is_none(), "{bad} parsed");
        }
        assert_eq!(
            set("openid  bogus fhirUser openid").to_string(),
            "openid fhirUser"
        );
    }

    #[test]
    fn granular_scopes_keep_their_query() {
        let text = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
        let scopes = set(text);
        let scope = scopes.resource_scopes().next().unwrap();
        assert_eq!(
            scope.query.as_deref(),
            Some("category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
        );
        assert_eq!(scopes.to_string(), text);
    }

    #[test]
    fn narrowing_never_widens() {
        let registered = set("patient/*.rs launch/patient openid fhirUser offline_access");
        let asked = set(
            "patient/Observation.cruds patient/Condition.read user/Patient.rs \
             patient/Observation.rs?category=a|b launch/patient online_access openid",
        );
        assert_eq!(
            asked.within(&registered).to_string(),
            "patient/Observation.rs patient/Condition.read patient/Observation.rs?category=a|b \
             launch/patient openid"
        );
        // A granular registration does not cover the whole type.
        let granular = set("patient/Observation.rs?category=a|b");
        assert!(set("patient/Observation.rs").within(&granular).is_empty());
        assert_eq!(
            set("patient/Observation.rs?category=a|b")
                .within(&granular)
                .to_string(),
            "patient/Observation.rs?category=a|b"
        );
    }
}
