"""Layer planners: each returns the LayerPlan (history line and file specs) of one image layer.

Each planner runs after the previous layers were written (build.written is current), so the
big-data layers can top the image up to the requested size. Planners only decide paths, sizes
and where secrets go; content is produced when the layer is written (synth.tarwrite).
"""
