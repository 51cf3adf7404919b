//! Live changes to a scene: a patch is one operation object or an array of
//! them, applied all-or-nothing. The operations (documented in
//! `docs/capture.md`):
//!
//! ```json
//! {"op": "add", "node": {"id": "dot", "type": "circle", "radius": 5}, "before": "label"}
//! {"op": "put", "node": {"id": "cursor-ann", "type": "circle", "radius": 8}}
//! {"op": "remove", "id": "dot"}
//! {"op": "update", "id": "dot", "set": {"fill": "#ff0000", "radius": 8}}
//! {"op": "move", "id": "dot", "x": 100, "y": 40}
//! {"op": "move", "id": "dot", "dx": 5, "dy": -5, "z": "top"}
//! {"op": "background", "color": "#202020"}
//! {"op": "clear"}
//! {"op": "replace", "scene": {"background": "#000", "nodes": []}}
//! ```

use std::sync::Arc;

use serde_json::{Map, Value};

use super::color::parse_color;
use super::scene::{CanvasError, MAX_NODES, Node, Resources, Scene, build_node, scene_from_value};

/// How many nodes one remote peer may own, so that one peer cannot fill
/// the scene for everyone.
pub const MAX_NODES_PER_PEER: usize = 100;

/// Who sends a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author<'a> {
    /// The pipeline or application: may do anything.
    Pipeline,
    /// A remote peer, by its peer id: may add nodes (which it then owns),
    /// and change, move or remove only its own; `clear` removes only its
    /// own nodes; `background` and `replace` are the pipeline's.
    Peer(&'a str),
}

const OPS: &[&str] = &[
    "add",
    "put",
    "remove",
    "update",
    "move",
    "background",
    "clear",
    "replace",
];

/// Parses `json` and applies it to a copy of `scene`; `scene` itself is
/// left as it was when any operation fails.
pub fn apply_patch(
    scene: &Scene,
    json: &str,
    resources: &mut Resources,
) -> Result<Scene, CanvasError> {
    apply_patch_from(scene, json, resources, Author::Pipeline)
}

/// [`apply_patch`] on behalf of `author`: a remote peer's patch touching a
/// node it does not own is refused whole with `not-owner`.
pub fn apply_patch_from(
    scene: &Scene,
    json: &str,
    resources: &mut Resources,
    author: Author,
) -> Result<Scene, CanvasError> {
    let value: Value = serde_json::from_str(json)?;
    apply_patch_value_from(scene, &value, resources, author)
}

pub fn apply_patch_value(
    scene: &Scene,
    patch: &Value,
    resources: &mut Resources,
) -> Result<Scene, CanvasError> {
    apply_patch_value_from(scene, patch, resources, Author::Pipeline)
}

pub fn apply_patch_value_from(
    scene: &Scene,
    patch: &Value,
    resources: &mut Resources,
    author: Author,
) -> Result<Scene, CanvasError> {
    resources.image_bytes = scene.image_bytes();
    resources.refusal = None;
    let ops: &[Value] = match patch {
        Value::Array(ops) => ops,
        single @ Value::Object(_) => std::slice::from_ref(single),
        _ => {
            return Err(CanvasError::Invalid(
                "a patch is an operation object {\"op\": ...} or an array of them".into(),
            ));
        }
    };
    let mut next = scene.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_op(&mut next, op, resources, author).map_err(|err| {
            let label = op
                .get("op")
                .and_then(Value::as_str)
                .map(|o| match op.get("id").and_then(Value::as_str) {
                    Some(id) => format!(" ({o} {id:?})"),
                    None => format!(" ({o})"),
                })
                .unwrap_or_default();
            let message = format!("patch operation {index}{label}: {}", err.message);
            match err.code.or(resources.refusal.take()) {
                Some(code) => CanvasError::refused(code, message),
                None => CanvasError::Invalid(message),
            }
        })?;
    }
    Ok(next)
}

/// Why one operation failed: the text, and a code when it is a refusal
/// rather than a mistake.
struct OpError {
    code: Option<&'static str>,
    message: String,
}

impl<T: Into<String>> From<T> for OpError {
    fn from(message: T) -> Self {
        OpError {
            code: None,
            message: message.into(),
        }
    }
}

fn refuse(code: &'static str, message: String) -> OpError {
    OpError {
        code: Some(code),
        message,
    }
}

/// Refused unless `author` may change `node`.
fn check_owner(node: &Node, author: Author) -> Result<(), OpError> {
    match author {
        Author::Pipeline => Ok(()),
        Author::Peer(peer) if node.owner.as_deref() == Some(peer) => Ok(()),
        Author::Peer(peer) => Err(refuse(
            "not-owner",
            format!(
                "node {:?} belongs to {}; peer {peer:?} may change only the nodes it added",
                node.id.as_deref().unwrap_or_default(),
                match &node.owner {
                    Some(owner) => format!("peer {owner:?}"),
                    None => "the pipeline".to_owned(),
                }
            ),
        )),
    }
}

/// A node `author` adds: owned by the peer, within its share of nodes.
fn adopt(mut node: Node, scene: &Scene, author: Author) -> Result<Node, OpError> {
    if let Author::Peer(peer) = author {
        let owned = scene
            .nodes
            .iter()
            .filter(|n| n.owner.as_deref() == Some(peer))
            .count();
        if owned >= MAX_NODES_PER_PEER {
            return Err(refuse(
                "too-many-nodes",
                format!(
                    "peer {peer:?} already has {MAX_NODES_PER_PEER} nodes, the most one peer may add"
                ),
            ));
        }
        node.owner = Some(peer.to_owned());
    }
    Ok(node)
}

fn apply_op(
    scene: &mut Scene,
    op: &Value,
    resources: &mut Resources,
    author: Author,
) -> Result<(), OpError> {
    let Value::Object(op) = op else {
        return Err("an operation is a JSON object".into());
    };
    let name = match op.get("op") {
        Some(Value::String(name)) => name.as_str(),
        _ => return Err(format!("\"op\" is missing; use one of {}", OPS.join(", ")).into()),
    };
    let allowed: &[&str] = match name {
        "add" => &["op", "node", "before"],
        "put" => &["op", "node"],
        "remove" => &["op", "id"],
        "update" => &["op", "id", "set"],
        "move" => &["op", "id", "x", "y", "dx", "dy", "z"],
        "background" => &["op", "color"],
        "clear" => &["op"],
        "replace" => &["op", "scene"],
        other => {
            return Err(format!("unknown op {other:?}; use one of {}", OPS.join(", ")).into());
        }
    };
    if let Some(key) = op.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {key:?}; {name} takes {}",
            allowed[1..].join(", ")
        )
        .into());
    }
    if let (Author::Peer(peer), "background" | "replace") = (author, name) {
        return Err(refuse(
            "not-allowed",
            format!("{name} changes the whole canvas; only the pipeline may, not peer {peer:?}"),
        ));
    }

    match name {
        "add" => {
            let Some(Value::Object(spec)) = op.get("node") else {
                return Err("\"node\" must be a node object".into());
            };
            if scene.nodes.len() >= MAX_NODES {
                return Err(refuse(
                    "too-many-nodes",
                    format!("the scene already holds {MAX_NODES} nodes"),
                ));
            }
            let node = adopt(build_node(spec.clone(), resources)?, scene, author)?;
            if let Some(id) = &node.id
                && scene.index_of(id).is_some()
            {
                return Err(
                    format!("a node with id {id:?} exists already; update it instead").into(),
                );
            }
            let at = match op.get("before") {
                None => scene.nodes.len(),
                Some(Value::String(before)) => find(scene, before)?,
                Some(_) => return Err("\"before\" must be a node id".into()),
            };
            scene.nodes.insert(at, Arc::new(node));
        }
        "put" => {
            // Add or replace by id: what a remote peer drawing its own
            // cursor sends, without knowing whether it drew one before.
            let Some(Value::Object(spec)) = op.get("node") else {
                return Err("\"node\" must be a node object".into());
            };
            let node = build_node(spec.clone(), resources)?;
            let Some(id) = node.id.clone() else {
                return Err("\"put\" needs a node with an \"id\"".into());
            };
            match scene.index_of(&id) {
                Some(at) => {
                    check_owner(&scene.nodes[at], author)?;
                    let mut node = node;
                    node.owner = scene.nodes[at].owner.clone();
                    scene.nodes[at] = Arc::new(node);
                }
                None if scene.nodes.len() >= MAX_NODES => {
                    return Err(refuse(
                        "too-many-nodes",
                        format!("the scene already holds {MAX_NODES} nodes"),
                    ));
                }
                None => scene.nodes.push(Arc::new(adopt(node, scene, author)?)),
            }
        }
        "remove" => {
            let at = find(scene, required_id(op)?)?;
            check_owner(&scene.nodes[at], author)?;
            scene.nodes.remove(at);
        }
        "update" => {
            let id = required_id(op)?;
            let at = find(scene, id)?;
            check_owner(&scene.nodes[at], author)?;
            let Some(Value::Object(changes)) = op.get("set") else {
                return Err("\"set\" must be an object of fields to change".into());
            };
            let mut spec = scene.nodes[at].spec.clone();
            merge(&mut spec, changes);
            let mut node = build_node(spec, resources)?;
            if let Some(new_id) = &node.id
                && new_id != id
                && scene.index_of(new_id).is_some()
            {
                return Err(format!("cannot rename to {new_id:?}: that id is taken").into());
            }
            node.owner = scene.nodes[at].owner.clone();
            scene.nodes[at] = Arc::new(node);
        }
        "move" => move_node(scene, op, resources, author)?,
        "background" => {
            let color = op
                .get("color")
                .and_then(Value::as_str)
                .ok_or("\"color\" is missing")?;
            scene.background = parse_color(color)?;
        }
        "clear" => match author {
            Author::Pipeline => scene.nodes.clear(),
            Author::Peer(peer) => scene.nodes.retain(|n| n.owner.as_deref() != Some(peer)),
        },
        "replace" => {
            let value = op.get("scene").ok_or("\"scene\" is missing")?;
            *scene = scene_from_value(value, resources).map_err(|e| OpError {
                code: match &e {
                    CanvasError::Refused { code, .. } => Some(*code),
                    _ => None,
                },
                message: e.to_string(),
            })?;
        }
        _ => unreachable!(),
    }
    Ok(())
}

fn required_id(op: &Map<String, Value>) -> Result<&str, OpError> {
    op.get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| "\"id\" is missing".into())
}

fn find(scene: &Scene, id: &str) -> Result<usize, OpError> {
    scene
        .index_of(id)
        .ok_or_else(|| format!("no node with id {id:?}").into())
}

/// Sets fields; `null` removes one, bringing back its default.
fn merge(spec: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (key, value) in changes {
        if value.is_null() {
            spec.remove(key);
        } else {
            spec.insert(key.clone(), value.clone());
        }
    }
}

fn number(op: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match op.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{key} must be a number")),
    }
}

fn move_node(
    scene: &mut Scene,
    op: &Map<String, Value>,
    resources: &mut Resources,
    author: Author,
) -> Result<(), OpError> {
    let at = find(scene, required_id(op)?)?;
    check_owner(&scene.nodes[at], author)?;
    let (x, y, dx, dy) = (
        number(op, "x")?,
        number(op, "y")?,
        number(op, "dx")?,
        number(op, "dy")?,
    );
    if x.is_some() && dx.is_some() || y.is_some() && dy.is_some() {
        return Err("give x/y (absolute) or dx/dy (relative), not both".into());
    }
    if [x, y, dx, dy].iter().all(Option::is_none) && !op.contains_key("z") {
        return Err("nothing to move: give x and y, dx and dy, or z".into());
    }
    let node = &scene.nodes[at];
    if [x, y, dx, dy].iter().any(Option::is_some) {
        let new_x = x.unwrap_or(node.x as f64) + dx.unwrap_or(0.0);
        let new_y = y.unwrap_or(node.y as f64) + dy.unwrap_or(0.0);
        let mut spec = node.spec.clone();
        spec.insert("x".into(), Value::from(new_x));
        spec.insert("y".into(), Value::from(new_y));
        let mut moved = build_node(spec, resources)?;
        moved.owner = node.owner.clone();
        scene.nodes[at] = Arc::new(moved);
    }
    if let Some(z) = op.get("z") {
        let last = scene.nodes.len() - 1;
        let to = match z {
            Value::String(s) if s == "top" => last,
            Value::String(s) if s == "bottom" => 0,
            Value::String(s) if s == "up" => (at + 1).min(last),
            Value::String(s) if s == "down" => at.saturating_sub(1),
            Value::Number(n) => n
                .as_u64()
                .map(|n| (n as usize).min(last))
                .ok_or("z must be top, bottom, up, down or a position from 0")?,
            _ => return Err("z must be top, bottom, up, down or a position from 0".into()),
        };
        let node = scene.nodes.remove(at);
        scene.nodes.insert(to, node);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvassrc::scene::parse_scene;
    use crate::canvassrc::text::FontBook;

    fn scene(json: &str) -> Scene {
        let mut fonts = FontBook::default();
        parse_scene(json, &mut Resources::new(&mut fonts, false)).unwrap()
    }

    fn patch(scene: &Scene, json: &str) -> Result<Scene, CanvasError> {
        let mut fonts = FontBook::default();
        apply_patch(scene, json, &mut Resources::new(&mut fonts, false))
    }

    const BASE: &str = r#"{"nodes":[
        {"id":"a","type":"rect","width":10,"height":10},
        {"id":"b","type":"circle","x":5,"y":5,"radius":3}]}"#;

    fn ids(s: &Scene) -> Vec<&str> {
        s.nodes
            .iter()
            .map(|n| n.id.as_deref().unwrap_or("-"))
            .collect()
    }

    #[test]
    fn put_adds_then_replaces_in_place() {
        let s = scene(r#"{"nodes":[{"id":"a","type":"rect","width":1,"height":1}]}"#);
        let node = r#"{"op":"put","node":{"id":"c","type":"circle","radius":3}}"#;
        let s = patch(&s, node).unwrap();
        assert_eq!(s.nodes.len(), 2);
        let s = patch(
            &s,
            r#"{"op":"put","node":{"id":"c","type":"circle","radius":9}}"#,
        )
        .unwrap();
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.nodes[1].spec["radius"], 9);
        assert!(
            patch(&s, r#"{"op":"put","node":{"type":"circle","radius":3}}"#)
                .unwrap_err()
                .to_string()
                .contains("id")
        );
    }

    #[test]
    fn add_before_and_remove() {
        let s = scene(BASE);
        let s = patch(
            &s,
            r#"{"op":"add","node":{"id":"c","type":"rect","width":1,"height":1},"before":"b"}"#,
        )
        .unwrap();
        assert_eq!(ids(&s), ["a", "c", "b"]);
        let s = patch(&s, r#"{"op":"remove","id":"a"}"#).unwrap();
        assert_eq!(ids(&s), ["c", "b"]);
    }

    #[test]
    fn move_absolute_relative_and_in_depth() {
        let s = scene(BASE);
        let s = patch(&s, r#"{"op":"move","id":"a","x":40,"y":50}"#).unwrap();
        assert_eq!((s.nodes[0].x, s.nodes[0].y), (40.0, 50.0));
        let s = patch(
            &s,
            r#"[{"op":"move","id":"b","dx":1,"dy":-1},{"op":"move","id":"a","z":"top"}]"#,
        )
        .unwrap();
        assert_eq!(ids(&s), ["b", "a"]);
        assert_eq!((s.nodes[0].x, s.nodes[0].y), (6.0, 4.0));
    }

    #[test]
    fn update_merges_and_null_restores_defaults() {
        let s = scene(BASE);
        let s = patch(
            &s,
            r##"{"op":"update","id":"b","set":{"fill":"#00ff00","radius":9}}"##,
        )
        .unwrap();
        assert_eq!(s.nodes[1].spec["radius"], 9);
        let s = patch(&s, r#"{"op":"update","id":"b","set":{"fill":null}}"#).unwrap();
        assert!(!s.nodes[1].spec.contains_key("fill"));
    }

    #[test]
    fn failed_patch_changes_nothing() {
        let s = scene(BASE);
        let err = patch(
            &s,
            r#"[{"op":"remove","id":"a"},{"op":"remove","id":"zzz"}]"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "patch operation 1 (remove \"zzz\"): no node with id \"zzz\""
        );
        assert_eq!(ids(&s), ["a", "b"]);
    }

    #[test]
    fn clear_errors() {
        let s = scene(BASE);
        let err = patch(&s, "{not json").unwrap_err();
        assert!(
            matches!(
                err,
                CanvasError::Json {
                    line: 1,
                    column: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = patch(&s, r#"{"op":"add","node":{"id":"t","type":"triangle"}}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown node type \"triangle\""),
            "{err}"
        );
        let err = patch(
            &s,
            r#"{"op":"add","node":{"id":"a","type":"rect","width":1,"height":1}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        let err = patch(&s, r#"{"op":"paint"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown op \"paint\""), "{err}");
        let err = patch(&s, r#"{"op":"move","id":"a","x":1,"dx":2}"#).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let err = patch(&s, r#"{"op":"update","id":"a","set":{"widht":3}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field \"widht\""), "{err}");
    }

    #[test]
    fn remote_patches_cannot_read_files() {
        let s = scene(BASE);
        let err = patch(
            &s,
            r#"{"op":"add","node":{"type":"image","src":"/etc/passwd"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod ownership_tests;
