package dev.mergeforge.tensor;

import java.util.Arrays;
import java.util.Locale;

/**
 * Element types of safetensors files. Only the float types take part in merges; the others are
 * recognised so that headers parse and errors can name them.
 */
public enum DType {
    F64(8, true), F32(4, true), F16(2, true), BF16(2, true),
    I64(8, false), I32(4, false), I16(2, false), I8(1, false), U8(1, false), BOOL(1, false);

    private final int byteSize;
    private final boolean floating;

    DType(int byteSize, boolean floating) {
        this.byteSize = byteSize;
        this.floating = floating;
    }

    public int byteSize() { return byteSize; }

    /** True for the types a merge can read and write (F64 is read only). */
    public boolean isFloat() { return floating; }

    /** The safetensors header spelling ("BF16", "F32", ...). */
    public String safetensorsName() { return name(); }

    public static DType fromSafetensors(String s) {
        for (DType d : values()) if (d.name().equals(s)) return d;
        throw new IllegalArgumentException("unknown safetensors dtype '" + s + "'; known: " + Arrays.toString(values()));
    }

    /**
     * Parses a user-facing dtype name as mergekit spells them: float32/fp32/f32, float16/fp16/half,
     * bfloat16/bf16. Returns null for an unknown name so callers can report the key.
     */
    public static DType parseUserName(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "float32", "fp32", "f32", "float" -> F32;
            case "float16", "fp16", "f16", "half" -> F16;
            case "bfloat16", "bf16" -> BF16;
            default -> null;
        };
    }

    /** The name transformers writes into config.json's torch_dtype. */
    public String torchName() {
        return switch (this) {
            case F64 -> "float64";
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case I64 -> "int64";
            case I32 -> "int32";
            case I16 -> "int16";
            case I8 -> "int8";
            case U8 -> "uint8";
            case BOOL -> "bool";
        };
    }
}
