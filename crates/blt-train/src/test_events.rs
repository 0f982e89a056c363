//! Burn metric events for the renderer and dashboard unit tests.

use std::sync::Arc;

use burn::train::{
    metric::{
        MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry, SerializedEntry,
    },
    renderer::MetricState,
};

/// The id of the metric called `name`.
pub(crate) fn id(name: &str) -> MetricId {
    MetricId::new(Arc::new(name.to_string()))
}

/// A numeric metric's definition (lower is better).
pub(crate) fn definition(name: &str, unit: Option<&str>) -> MetricDefinition {
    MetricDefinition {
        metric_id: id(name),
        name: name.to_string(),
        description: None,
        attributes: NumericAttributes {
            unit: unit.map(str::to_string),
            higher_is_better: false,
        }
        .into(),
    }
}

/// An aggregated numeric update of `name` over `count` items.
pub(crate) fn numeric(name: &str, value: f64, count: usize) -> MetricState {
    let entry = MetricEntry::new(id(name), SerializedEntry::new(String::new(), String::new()));
    MetricState::Numeric(
        entry,
        NumericEntry::Aggregated {
            aggregated_value: value,
            count,
        },
    )
}
