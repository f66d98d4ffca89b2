package dev.mergeforge.backend.cuda;

/**
 * Every kernel entry point the Java side launches, with the PTX module (kernels/&lt;module&gt;.cu,
 * built by {@code make ptx} and packaged as {@code /ptx/&lt;module&gt;.ptx} in the jar) that defines it.
 */
enum Kernel {
    LOAD_BF16("convert", "mf_load_bf16", "ppl"),
    LOAD_F16("convert", "mf_load_f16", "ppl"),
    STORE_BF16("convert", "mf_store_bf16", "ppl"),
    STORE_F16("convert", "mf_store_f16", "ppl"),
    SUB("elementwise", "mf_sub", "pppl"),
    ADD("elementwise", "mf_add", "pppl"),
    SCALE("elementwise", "mf_scale", "pfpl"),
    DIV_SCALAR("elementwise", "mf_div_scalar", "pfpl"),
    AXPY("elementwise", "mf_axpy", "fppl"),
    LERP("elementwise", "mf_lerp", "ppffpl"),
    WEIGHTED_SUM("elementwise", "mf_weighted_sum", "ppipl"),
    DELTA_VARIANCE("elementwise", "mf_delta_variance", "ppiipl"),
    SPHERE("elementwise", "mf_sphere", "ppiiipppl"),

    KARCHER_MEAN("karcher", "mf_karcher_mean", "pppipifpl"),
    KARCHER_TANGENT("karcher", "mf_karcher_tangent", "ppppifpl"),
    KARCHER_MEAN_TANGENT("karcher", "mf_karcher_mean_tangent", "pppifpppifpl"),
    BLOCK_SUM_ABS("reduce", "mf_block_sum_abs", "plpl", 64),
    BLOCK_SUM_SQUARES("reduce", "mf_block_sum_squares", "plpl", 64),
    BLOCK_DOT("reduce", "mf_block_dot", "pplpl", 64),
    RADIX_HIST("select", "mf_radix_hist", "pliiiiip"),
    EQ_COUNT("select", "mf_eq_count", "pliiipp", 256),
    KEEP_RANK_MASK("select", "mf_keep_rank_mask", "pliililpp", 256),
    PHILOX_DROP("dare", "mf_philox_drop", "pliii"),
    ELECT_SIGN("ties", "mf_elect_sign", "pipl"),
    DISJOINT_MERGE("ties", "mf_disjoint_merge", "ppipipl"),
    RELAX("aim", "mf_relax", "pppfilpl"),
    RMSNORM("calib", "mf_rmsnorm", "ppdipl", 64),
    ROPE("calib", "mf_rope", "ppppiil"),
    ATTENTION("calib", "mf_attention", "ppppiiiifpl", 256),
    SILU_MUL("calib", "mf_silu_mul", "ppl"),
    BIAS_ADD("calib", "mf_bias_add", "ppll"),
    ABS_SUM_COLS("calib", "mf_abs_sum_cols", "plip"),
    CHUNK_LOAD("chunk", "mf_chunk_load", "piplp"),
    CHUNK_MUL("chunk", "mf_chunk_mul", "pppl"),
    CHUNK_DIV("chunk", "mf_chunk_div", "pppl"),
    CHUNK_ABS("chunk", "mf_chunk_abs", "ppl"),
    CHUNK_CLAMP("chunk", "mf_chunk_clamp", "pffpl"),
    CHUNK_FILL("chunk", "mf_chunk_fill", "pfl"),
    CHUNK_AFFINE("chunk", "mf_chunk_affine", "pffpl"),
    CHUNK_KEEP_NONZERO("chunk", "mf_chunk_keep_nonzero", "pppl"),
    CHUNK_DISJOINT_DIVISOR("chunk", "mf_chunk_disjoint_divisor", "ppippl"),
    CHUNK_BLOCK_SUMS("chunk", "mf_chunk_block_sums", "ippllpppl", 64),
    CHUNK_ABS_HIST("chunk", "mf_chunk_abs_hist", "plip"),
    CHUNK_LANE_DOTS("chunk", "mf_chunk_lane_dots", "ppllpl"),
    CHUNK_LANE_SCALE("chunk", "mf_chunk_lane_scale", "ppllpl"),
    CHUNK_PHILOX_DROP("chunk", "mf_chunk_philox_drop", "plliii"),
    CHUNK_DROP_PROB("chunk", "mf_chunk_drop_prob", "ppllii"),
    CHUNK_NONZERO_BITS("chunk", "mf_chunk_nonzero_bits", "pllp"),
    CHUNK_KEEP_BITS("chunk", "mf_chunk_keep_bits", "pllp"),
    CHUNK_ORDER_HIST("chunk", "mf_chunk_order_hist", "plip"),
    FUSION_IMPORTANCE("chunk", "mf_fusion_importance", "pplppl"),
    FUSION_COMBINE("chunk", "mf_fusion_combine", "pplpfpl"),
    FUSION_ROW_KL("chunk", "mf_fusion_row_kl", "pplpl");

    final String module;
    final String entry;
    /**
     * Parameter kinds in order: p = device pointer, l = long long, i = 32-bit int or unsigned,
     * f = float, d = double. PTX declares p and l as .u64, i as .u32/.s32, f as .f32, d as .f64
     * (checked by CudaPtxTest).
     */
    final String signature;
    /**
     * The block size the kernel is written for (its {@code __launch_bounds__}, which CudaPtxTest
     * reads back from the PTX's {@code .maxntid}), or 0 when any block size works (grid-stride
     * kernels). Launchers pass exactly this many threads per block; {@link #checkLaunch} refuses
     * any other.
     */
    final int block;

    Kernel(String module, String entry, String signature) { this(module, entry, signature, 0); }

    Kernel(String module, String entry, String signature, int block) {
        this.module = module;
        this.entry = entry;
        this.signature = signature;
        this.block = block;
    }

    /** The signature letter of a launch argument, or '?' for an unsupported type. */
    static char kindOf(Object arg) {
        return switch (arg) {
            case DeviceBuffer b -> 'p';
            case Long v -> 'l';
            case Integer v -> 'i';
            case Float v -> 'f';
            case Double v -> 'd';
            case null, default -> '?';
        };
    }

    /** Throws unless args match the signature (a programming error, caught before the launch). */
    void checkArgs(Object... args) {
        StringBuilder got = new StringBuilder();
        for (Object a : args) got.append(kindOf(a));
        if (!got.toString().equals(signature)) {
            throw new IllegalStateException("kernel " + entry + " takes (" + signature + ") but was given (" + got + ")");
        }
    }

    /**
     * Throws unless a launch of {@code threads} per block fits the kernel's declared block size and
     * args match the signature: a programming error, caught before the launch, where a GPU would
     * fail it ({@code __launch_bounds__} exceeded) or, worse, run it with the wrong shape.
     */
    void checkLaunch(int threads, Object... args) {
        if (block != 0 && threads != block) {
            throw new IllegalStateException("kernel " + entry + " is written for blocks of " + block + " threads (its __launch_bounds__) but was launched with "
                    + threads + ": launch it with Kernel." + name() + ".block");
        }
        checkArgs(args);
    }

    /** Classpath resource of the module's PTX. */
    String resource() { return "/ptx/" + module + ".ptx"; }
}
