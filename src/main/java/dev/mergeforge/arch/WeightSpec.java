package dev.mergeforge.arch;

/**
 * One stored weight of a family. For a pre or post weight {@code name} is the full tensor name;
 * for a layer weight it follows the layer prefix ({@code self_attn.q_proj.weight} after
 * {@code model.layers.N.}), and an expert's name holds {@code {e}} where its index goes.
 * Its bias, where the checkpoint has one, is the same name ending in {@code .bias}.
 *
 * @param input the name of the activation this linear reads; linears with the same input (q/k/v,
 *              gate/up) share one Gram in RegMean's statistics. Empty for norms and embeddings.
 */
public record WeightSpec(String name, Role role, String input) {
    public WeightSpec {
        if (name == null || !name.endsWith(".weight")) throw new IllegalArgumentException("weight name must end in .weight: " + name);
        if (role == null || input == null) throw new IllegalArgumentException("role and input must not be null for " + name);
        if (role.isExpert() != name.contains("{e}")) {
            throw new IllegalArgumentException(name + ": expert weights (and only they) carry {e} in their name");
        }
    }

    /** A norm or embedding: no input group. */
    public static WeightSpec of(String name, Role role) { return new WeightSpec(name, role, ""); }

    /** A linear reading {@code input}. */
    public static WeightSpec linear(String name, Role role, String input) { return new WeightSpec(name, role, input); }

    /** The name with the expert index filled in. */
    public String forExpert(int e) { return name.replace("{e}", Integer.toString(e)); }
}
