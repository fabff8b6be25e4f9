# Train a ReLU SAE on a toy with known features and print the recovery table.
#   SAE_LIBRARY=/path/to/libsae.so.0 julia bindings/julia/examples/train_toy.jl
include(joinpath(@__DIR__, "..", "LibSae.jl"))
using .LibSae

# A configuration of `kind` with parameters set by name (integers must be whole numbers).
function config(kind, params...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    LibSae.check(LibSae.sae_config_create(out, kind, C_NULL), "sae_config_create")
    for (name, value) in params
        status = LibSae.sae_config_set_by_name(out[], name, Float64(value))
        LibSae.check(status, unsafe_string(LibSae.sae_config_errmsg(out[])))
    end
    return out[]
end

# Create a handle with `create(out, args..., cfg, allocator)` and free the configuration.
function create(createfn, cfg, args...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    status = createfn(out, args..., cfg, C_NULL)
    LibSae.check(status, unsafe_string(LibSae.sae_config_errmsg(cfg)))
    LibSae.sae_config_free(cfg)
    return out[]
end

function metric(metrics, which)
    v = Ref{Cdouble}(0)
    LibSae.check(LibSae.sae_metrics_get(metrics, which, v), "sae_metrics_get")
    return v[]
end

println(unsafe_string(LibSae.sae_build_info()))
d, n_features, n_latents = 64, 32, 64
toy = create(LibSae.sae_toy_create,
             config(LibSae.SAE_KIND_TOY, "n_features" => n_features, "d" => d,
                    "fire_prob" => 0.05, "seed" => 1))
model = create(LibSae.sae_model_create,
               config(LibSae.SAE_KIND_MODEL, "d_in" => d, "n_latents" => n_latents))
trainer = create(LibSae.sae_trainer_create,
                 config(LibSae.SAE_KIND_TRAINER, "lr" => 3e-3, "l1_coefficient" => 3e-3,
                        "batch_size" => 256), model)
metrics = create(LibSae.sae_metrics_create, config(LibSae.SAE_KIND_METRICS))

# Zero-copy arrays: a (d, n) Matrix{Float32} is libsae's row-major n x d with ld = d.
x = Matrix{Float32}(undef, d, 8)
LibSae.check(LibSae.sae_toy_sample(toy, UInt64(0), Int64(8), x, Int64(d)), "sae_toy_sample")
println("first sample norm: ", sqrt(sum(abs2, x[:, 1])))

LibSae.check(LibSae.sae_trainer_train_toy(trainer, toy, Int64(3000)),
             unsafe_string(LibSae.sae_trainer_errmsg(trainer)))
LibSae.check(LibSae.sae_metrics_compute(metrics, model, toy),
             unsafe_string(LibSae.sae_metrics_errmsg(metrics)))
best = Vector{Float32}(undef, n_features)
LibSae.check(LibSae.sae_metrics_copy_array(metrics, LibSae.SAE_ARRAY_MAX_COS_TRUE, best,
                                           Int64(n_features)), "sae_metrics_copy_array")
println("mean max cosine, true -> learned  ", round(metric(metrics, LibSae.SAE_METRIC_MMCS_TRUE), digits=4))
println("mean max cosine, learned -> true  ", round(metric(metrics, LibSae.SAE_METRIC_MMCS_LEARNED), digits=4))
println("fraction recovered (>= 0.9)       ", round(metric(metrics, LibSae.SAE_METRIC_FRAC_RECOVERED), digits=4))
println("per-feature max cosine: min ", minimum(best), ", max ", maximum(best))

# Any order: the trainer holds its own reference to the model.
LibSae.sae_model_free(model)
LibSae.sae_trainer_free(trainer)
LibSae.sae_metrics_free(metrics)
LibSae.sae_toy_free(toy)
