//! A GraphQL document checked before any work is done on it: its cost with fragments expanded
//! (counted in time linear in the document, each fragment once), the operation the request
//! selects, and that operation's root fields. The library's own depth and complexity checks
//! expand every fragment spread anew, so a 900-byte document of fragments that spread each
//! other twice would cost them 2^depth steps; here it is refused first.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::Name;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

/// Fields of the expanded document (the standard introspection query has about 200).
pub const MAX_FIELDS: u64 = 1000;
/// Fragment spreads of the expanded document.
pub const MAX_SPREADS: u64 = 200;
/// Field depth, through fragments.
pub const MAX_DEPTH: u64 = super::MAX_DEPTH as u64;
/// Aliases of the expanded document (alias amplification).
pub const MAX_ALIASES: u64 = 30;
/// Selection sets and fragment hops nested in one another, which bounds this module's own
/// recursion whatever the document.
const MAX_NESTING: usize = 64;

/// The work a selection set asks for once expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub spreads: u64,
    pub aliases: u64,
    pub depth: u64,
}

impl Cost {
    fn add(self, o: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(o.fields),
            spreads: self.spreads.saturating_add(o.spreads),
            aliases: self.aliases.saturating_add(o.aliases),
            depth: self.depth.max(o.depth),
        }
    }

    /// The first limit exceeded, as the message the client gets.
    fn over_limit(&self) -> Option<String> {
        let checks = [
            (self.fields, MAX_FIELDS, "fields"),
            (self.spreads, MAX_SPREADS, "fragment spreads"),
            (self.aliases, MAX_ALIASES, "aliases"),
            (self.depth, MAX_DEPTH, "levels of nesting"),
        ];
        checks
            .iter()
            .find(|(n, max, _)| n > max)
            .map(|(n, max, what)| {
                let n = if *n == u64::MAX {
                    "too many".to_owned()
                } else {
                    n.to_string()
                };
                format!("Query has {n} {what} with fragments expanded; at most {max} are allowed.")
            })
    }
}

/// Why a document is refused before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over a cost limit (`QUERY_LIMIT_EXCEEDED`).
    Limit(String),
    /// A fragment spreads itself (`GRAPHQL_VALIDATION_FAILED`).
    Cycle(String),
}

enum Memo {
    InProgress,
    Done(Cost),
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a Name, Memo>,
}

impl<'a> Counter<'a> {
    fn set(&mut self, set: &'a SelectionSet, nesting: usize) -> Result<Cost, Refusal> {
        if nesting > MAX_NESTING {
            return Err(Refusal::Limit(format!(
                "Query is nested deeper than {MAX_NESTING} selection sets and fragments."
            )));
        }
        let mut total = Cost::default();
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(f) => {
                    let child = self.set(&f.node.selection_set.node, nesting + 1)?;
                    Cost {
                        fields: child.fields.saturating_add(1),
                        spreads: child.spreads,
                        aliases: child
                            .aliases
                            .saturating_add(u64::from(f.node.alias.is_some())),
                        depth: child.depth.saturating_add(1),
                    }
                }
                Selection::InlineFragment(i) => {
                    self.set(&i.node.selection_set.node, nesting + 1)?
                }
                Selection::FragmentSpread(s) => {
                    let fragment = self.fragment(&s.node.fragment_name.node, nesting + 1)?;
                    Cost {
                        spreads: fragment.spreads.saturating_add(1),
                        ..fragment
                    }
                }
            };
            total = total.add(cost);
        }
        Ok(total)
    }

    /// A fragment's cost, computed once. Unknown fragments cost nothing here: validation
    /// reports them.
    fn fragment(&mut self, name: &'a Name, nesting: usize) -> Result<Cost, Refusal> {
        match self.memo.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::InProgress) => {
                return Err(Refusal::Cycle(format!(
                    "Cannot spread fragment \"{}\" within itself.",
                    crate::telemetry::clip(name.as_str())
                )));
            }
            None => {}
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.memo.insert(name, Memo::InProgress);
        let cost = self.set(&fragment.node.selection_set.node, nesting)?;
        self.memo.insert(name, Memo::Done(cost));
        Ok(cost)
    }

    /// The root field names an operation selects, through fragments at its root.
    fn roots(&self, set: &'a SelectionSet, into: &mut BTreeSet<&'a str>, nesting: usize) {
        if nesting > MAX_NESTING {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    into.insert(f.node.name.node.as_str());
                }
                Selection::InlineFragment(i) => {
                    self.roots(&i.node.selection_set.node, into, nesting + 1);
                }
                Selection::FragmentSpread(s) => {
                    if let Some(f) = self.doc.fragments.get(&s.node.fragment_name.node) {
                        self.roots(&f.node.selection_set.node, into, nesting + 1);
                    }
                }
            }
        }
    }
}

/// One operation of a document.
#[derive(Debug)]
pub struct Operation {
    pub name: Option<Name>,
    pub ty: OperationType,
    /// Root field names, sorted.
    pub roots: Vec<String>,
}

/// A parsed document that passed the cost limits.
#[derive(Debug)]
pub struct Document {
    pub parsed: ExecutableDocument,
    pub cost: Cost,
    operations: Vec<Operation>,
}

impl Document {
    /// Counts the document's cost over all its operations (validation visits them all).
    pub fn analyse(parsed: ExecutableDocument) -> Result<Document, Refusal> {
        let mut counter = Counter {
            doc: &parsed,
            memo: HashMap::new(),
        };
        let ops: Vec<(Option<&Name>, &OperationDefinition)> = parsed
            .operations
            .iter()
            .map(|(name, op)| (name, &op.node))
            .collect();
        let mut cost = Cost::default();
        let mut operations = Vec::with_capacity(ops.len());
        for (name, op) in ops {
            cost = cost.add(counter.set(&op.selection_set.node, 0)?);
            if let Some(message) = cost.over_limit() {
                return Err(Refusal::Limit(message));
            }
            let mut roots = BTreeSet::new();
            counter.roots(&op.selection_set.node, &mut roots, 0);
            operations.push(Operation {
                name: name.cloned(),
                ty: op.ty,
                roots: roots.into_iter().map(str::to_owned).collect(),
            });
        }
        drop(counter);
        Ok(Document {
            parsed,
            cost,
            operations,
        })
    }

    /// The operation a request runs, by the rules the executor applies; `Err` with the
    /// message for the client when there is none.
    pub fn operation(&self, name: Option<&str>) -> Result<&Operation, String> {
        let single = matches!(self.parsed.operations, DocumentOperations::Single(_));
        match name {
            Some(name) => self
                .operations
                .iter()
                .find(|op| !single && op.name.as_ref().is_some_and(|n| n.as_str() == name))
                .ok_or_else(|| {
                    format!(
                        "Unknown operation named \"{}\".",
                        crate::telemetry::clip(name)
                    )
                }),
            None if self.operations.len() == 1 => Ok(&self.operations[0]),
            None => Err("Operation name required in request.".to_owned()),
        }
    }
}

/// Analysed documents by query text, for callers who authenticated (an anonymous caller can
/// neither fill nor flush it). Bounded by the bytes of its keys; moka's admission keeps the
/// documents in use when a flood of new ones arrives.
pub struct Documents(moka::sync::Cache<Arc<str>, Arc<Document>>);

/// Query text kept at most; a parsed document weighs about this many times its text.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;
const PARSED_WEIGHT: u32 = 8;
const CACHED_QUERY_MAX_LEN: usize = 16 * 1024;

impl Default for Documents {
    fn default() -> Self {
        Documents(
            moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|query: &Arc<str>, _| {
                    u32::try_from(query.len())
                        .unwrap_or(u32::MAX)
                        .saturating_mul(PARSED_WEIGHT)
                })
                .build(),
        )
    }
}

impl Documents {
    pub fn get(&self, query: &str) -> Option<Arc<Document>> {
        self.0.get(query)
    }

    pub fn put(&self, query: &str, doc: Arc<Document>) {
        if query.len() <= CACHED_QUERY_MAX_LEN {
            self.0.insert(Arc::from(query), doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn analyse(q: &str) -> Result<Document, Refusal> {
        Document::analyse(parse_query(q).unwrap())
    }

    /// `fragment F0 on Query { ...F1 ...F1 }`, each spreading the next twice, `levels` deep.
    pub fn explosion(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..levels {
            q += &format!("fragment F{i} on Query {{ ...F{n} ...F{n} }}\n", n = i + 1);
        }
        q += &format!("fragment F{levels} on Query {{ __typename }}\n");
        q
    }

    #[test]
    fn the_fragment_explosion_is_refused_by_counting_each_fragment_once() {
        for levels in [22, 30, 60] {
            let started = std::time::Instant::now();
            let refusal = analyse(&explosion(levels)).unwrap_err();
            assert!(matches!(refusal, Refusal::Limit(_)), "{refusal:?}");
            assert!(started.elapsed() < std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn costs_count_expanded_fields_spreads_aliases_and_depth() {
        let doc = analyse(
            "query { a: me { pk ...U } b: me { ...U } } fragment U on Me { username isSuperuser }",
        )
        .unwrap();
        assert_eq!(
            doc.cost,
            Cost {
                fields: 2 + 3 + 2,
                spreads: 2,
                aliases: 2,
                depth: 2
            }
        );
    }

    #[test]
    fn cycles_and_deep_nesting_are_refused() {
        let cycle =
            analyse("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }");
        assert!(matches!(cycle, Err(Refusal::Cycle(_))), "{cycle:?}");
        let deep = format!("query {{ {}pk{} }}", "me { ".repeat(20), " }".repeat(20));
        assert!(matches!(analyse(&deep), Err(Refusal::Limit(_))));
    }

    #[test]
    fn the_operation_is_chosen_as_the_executor_would() {
        let doc =
            analyse("query A { me { pk } } mutation B { deleteUserOAuthSourceConnection(pk: 1) }")
                .unwrap();
        assert_eq!(
            doc.operation(Some("B")).unwrap().ty,
            OperationType::Mutation
        );
        assert_eq!(
            doc.operation(Some("B")).unwrap().roots,
            ["deleteUserOAuthSourceConnection"]
        );
        assert!(doc.operation(None).unwrap_err().contains("required"));
        assert!(
            doc.operation(Some("C\n"))
                .unwrap_err()
                .starts_with("Unknown operation named")
        );
        let single = analyse("{ ...R } fragment R on Query { me { pk } errorCodes }").unwrap();
        assert_eq!(single.operation(None).unwrap().roots, ["errorCodes", "me"]);
        assert!(single.operation(Some("x")).is_err());
    }
}
