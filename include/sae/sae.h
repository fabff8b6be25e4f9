/* libsae: sparse autoencoders on toy models with known features. The one header
 * consumers include. See docs/ for the guide and the conventions. */
#ifndef SAE_SAE_H
#define SAE_SAE_H

#include <sae/core.h>
#include <sae/toy.h>
#include <sae/model.h>
#include <sae/train.h>
#include <sae/metrics.h>
#include <sae/io.h>

#endif
