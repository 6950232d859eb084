// The pool's map: one instanced quad per question, drawn as a round point.
//
// Each instance is a point in map coordinates, an sRGB colour (egui's render target is
// gamma-space, so colours pass through as they are) and flags. `view` maps map coordinates to
// the callback's viewport (egui sets the viewport to the widget's rect) and gives the point
// radius in pixels and the alpha that shades density when zoomed out: many points drawn at a
// low alpha add up where they crowd.

struct View {
    // NDC = map * scale + offset
    scale: vec2<f32>,
    offset: vec2<f32>,
    // The viewport's size in pixels.
    viewport: vec2<f32>,
    // Point radius in pixels.
    radius: f32,
    // Alpha of one point (1 when zoomed in; lower when zoomed out: the density shading).
    alpha: f32,
};

@group(0) @binding(0) var<uniform> view: View;

// Flags, as pool_map_gpu.rs writes them.
const CONTAMINATED: u32 = 1u;
const SELECTED: u32 = 2u;
const PICKED: u32 = 4u;
const HOVERED: u32 = 8u;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) colour: vec4<f32>,
    @location(2) @interpolate(flat) flags: u32,
};

@vertex
fn vs_main(
    @builtin(vertex_index) corner: u32,
    @location(0) point: vec2<f32>,
    @location(1) colour: vec4<f32>,
    @location(2) flags: u32,
) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(-1.0, 1.0),
        vec2<f32>(-1.0, 1.0), vec2<f32>(1.0, -1.0), vec2<f32>(1.0, 1.0),
    );
    let uv = corners[corner];
    var radius = view.radius;
    if ((flags & SELECTED) != 0u) {
        radius = radius * 1.6;
    }
    if ((flags & (CONTAMINATED | PICKED | HOVERED)) != 0u) {
        radius = max(radius * 1.6, 3.5);
    }
    let centre = point * view.scale + view.offset;
    var out: VertexOut;
    out.position = vec4<f32>(centre + uv * radius * 2.0 / view.viewport, 0.0, 1.0);
    out.uv = uv;
    out.colour = colour;
    out.flags = flags;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let r = length(in.uv);
    if (r > 1.0) {
        discard;
    }
    var rgb = in.colour.rgb;
    var a = in.colour.a * view.alpha;
    // Rings: hovered and picked white, contaminated red (the evaluation set is in the hover).
    if ((in.flags & (HOVERED | PICKED)) != 0u && r > 0.62) {
        rgb = vec3<f32>(1.0, 1.0, 1.0);
        a = 1.0;
    } else if ((in.flags & CONTAMINATED) != 0u && r > 0.55) {
        rgb = vec3<f32>(0.95, 0.16, 0.16);
        a = 1.0;
    } else if ((in.flags & (SELECTED | HOVERED | PICKED)) != 0u) {
        a = max(a, 0.9);
    }
    // A soft edge of about one pixel.
    let edge = clamp((1.0 - r) * view.radius, 0.0, 1.0);
    a = a * edge;
    // egui blends premultiplied alpha.
    return vec4<f32>(rgb * a, a);
}
