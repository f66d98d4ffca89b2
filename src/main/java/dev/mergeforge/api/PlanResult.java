package dev.mergeforge.api;

import java.util.List;

/**
 * What a merge would do, found without writing anything (the dry run): its inputs, the bytes it
 * reads and writes, its shards and the peak working memory it needs at most.
 *
 * @param baseModel        the base model, or null
 * @param outLayers        decoder layers of the output
 * @param bytesOut         bytes of the output's shard files
 * @param peakWorkingBytes upper bound of the float32 working memory: (maxInputs + 3) x largestElements x 4, more for data-informed methods
 * @param aimOmega         the config's AIM omega, or null without aim:
 * @param predictedPeakBytes the peak resident memory predicted under the memory budget (docs/io.md, "Memory budget")
 * @param memoryBudget     the budget line the merge logs: budget, chunk size, predicted peak, the tensor that sets it
 */
public record PlanResult(String method, String baseModel, List<String> models, List<SliceSource> sliceSources, int tensors, int outLayers,
                         long bytesIn, long bytesOut, List<String> shardFiles, long peakWorkingBytes, int maxInputs, long largestElements,
                         Double aimOmega, long predictedPeakBytes, String memoryBudget) {
    public PlanResult {
        models = List.copyOf(models);
        sliceSources = List.copyOf(sliceSources);
        shardFiles = List.copyOf(shardFiles);
    }

    /** One source of a {@code slices:} config: layers [layerStart, layerEnd) of a model. */
    public record SliceSource(String model, int layerStart, int layerEnd) {}
}
