package dev.mergeforge.tensor;

/** Scalar conversions between float32 and the 16-bit float formats (round to nearest even). */
public final class Floats {
    private Floats() {}

    /** bf16 bits -> float32: the bf16 is the top half of a float32. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** float32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN with its sign. */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) return (short) ((x >>> 16) | 0x0040);
        // add 0x7fff plus the lowest kept bit: ties go to the even neighbour
        int rounded = x + 0x7fff + ((x >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** IEEE half bits -> float32 (exact). */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** float32 -> IEEE half bits, round to nearest even, overflow to infinity. */
    public static short floatToF16(float f) {
        return Float.floatToFloat16(f);
    }
}
