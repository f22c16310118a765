//! Names a GraphQL request for metrics: its operation type and the root fields it selected,
//! known only for documents that validated (so clients cannot invent label values).
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};

/// Request data the extension fills in; the handler reads it after execution.
#[derive(Clone, Default)]
pub struct OperationSlot(Arc<Mutex<Option<String>>>);

impl OperationSlot {
    /// `mutation createUserOAuthConnection`, or `invalid` for a document that never ran.
    pub fn label(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_else(|| "invalid".to_owned())
    }
}

pub struct OperationLabel;

impl ExtensionFactory for OperationLabel {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationLabelExtension::default())
    }
}

/// Per request: the labels of the document's operations, by operation name.
#[derive(Default)]
struct OperationLabelExtension {
    parsed: Mutex<Vec<(Option<String>, String)>>,
}

fn label(ty: OperationType, fields: BTreeSet<&str>) -> String {
    let ty = match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let fields: Vec<&str> = fields.into_iter().collect();
    format!("{ty} {}", fields.join(","))
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationLabelExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let labels = doc
            .operations
            .iter()
            .map(|(name, op)| {
                let fields = op
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .map(|item| match &item.node {
                        Selection::Field(f) => f.node.name.node.as_str(),
                        _ => "…",
                    })
                    .collect();
                (name.map(|n| n.to_string()), label(op.node.ty, fields))
            })
            .collect();
        if let Ok(mut parsed) = self.parsed.lock() {
            *parsed = labels;
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // Execution starts only after validation: the names are the schema's own.
        let chosen = self.parsed.lock().ok().and_then(|parsed| {
            parsed
                .iter()
                .find(|(name, _)| operation_name.is_none() || name.as_deref() == operation_name)
                .map(|(_, label)| label.clone())
        });
        if let (Some(slot), Some(chosen)) = (ctx.data_opt::<OperationSlot>(), chosen)
            && let Ok(mut label) = slot.0.lock()
        {
            *label = Some(chosen);
        }
        next.run(ctx, operation_name).await
    }
}
