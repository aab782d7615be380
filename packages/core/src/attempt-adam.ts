import * as tf from '@tensorflow/tfjs';

// tf.train.adam's default decay rates.
const BETA1 = 0.9;
const BETA2 = 0.999;

/**
 * Scalar tensors of Adam's constants, made once per runner. tf.train.adam turns each JavaScript number
 * into a new scalar tensor on every use, which costs more than the small kernels it feeds.
 */
export class AdamConstants {
  readonly one: tf.Scalar;
  readonly beta1: tf.Scalar;
  readonly oneMinusBeta1: tf.Scalar;
  readonly beta2: tf.Scalar;
  readonly oneMinusBeta2: tf.Scalar;
  readonly epsilon: tf.Scalar;
  readonly negativeLearningRate: tf.Scalar;

  constructor(learningRate: number) {
    // The same float32 values that tf.train.adam(learningRate) converts its numbers to.
    this.one = tf.keep(tf.scalar(1));
    this.beta1 = tf.keep(tf.scalar(BETA1));
    this.oneMinusBeta1 = tf.keep(tf.scalar(1 - BETA1));
    this.beta2 = tf.keep(tf.scalar(BETA2));
    this.oneMinusBeta2 = tf.keep(tf.scalar(1 - BETA2));
    this.epsilon = tf.keep(tf.scalar(tf.backend().epsilon()));
    this.negativeLearningRate = tf.keep(tf.scalar(-learningRate));
  }

  dispose(): void {
    tf.dispose([this.one, this.beta1, this.oneMinusBeta1, this.beta2, this.oneMinusBeta2, this.epsilon, this.negativeLearningRate]);
  }
}

interface Moments {
  readonly first: tf.Tensor;
  readonly second: tf.Tensor;
}

/**
 * Adam for the steps of one attempt, with the kernels and the order of operations of tf.train.adam 4.22,
 * so that the weights come out bitwise equal. Its first step skips the products of the zero moments with
 * the decay rates, and the sums with them, because 0 + x is x. The one exception, 0 + -0, changes no
 * weight: the update is added to the weight, and weights never hold -0.
 */
export class AttemptAdam {
  readonly #constants: AdamConstants;
  #moments: Moments[] | undefined;
  #accumulatedBeta1: tf.Scalar;
  #accumulatedBeta2: tf.Scalar;

  constructor(constants: AdamConstants) {
    this.#constants = constants;
    this.#accumulatedBeta1 = tf.keep(constants.beta1.clone());
    this.#accumulatedBeta2 = tf.keep(constants.beta2.clone());
  }

  /** Takes one step on `loss` for `variables` and returns the loss, which the caller disposes. */
  minimize(loss: () => tf.Scalar, variables: readonly tf.Variable[]): tf.Scalar {
    const { value, grads } = tf.variableGrads(loss, [...variables]);
    try {
      this.#apply(variables, variables.map((variable) => grads[variable.name]));
    } finally {
      tf.dispose(grads);
    }
    return value;
  }

  /** Releases the moments and the accumulated decay rates; the constants belong to the runner. */
  dispose(): void {
    tf.dispose([this.#accumulatedBeta1, this.#accumulatedBeta2]);
    for (const moments of this.#moments ?? []) {
      tf.dispose([moments.first, moments.second]);
    }
    this.#moments = undefined;
  }

  #apply(variables: readonly tf.Variable[], gradients: readonly (tf.Tensor | undefined)[]): void {
    const c = this.#constants;
    const previous = this.#moments;
    const next: Moments[] = [];
    tf.tidy(() => {
      const oneMinusAccumulatedBeta1 = tf.sub(c.one, this.#accumulatedBeta1);
      const oneMinusAccumulatedBeta2 = tf.sub(c.one, this.#accumulatedBeta2);
      variables.forEach((variable, index) => {
        const gradient = gradients[index];
        const moments = previous?.[index];
        if (gradient === undefined) {
          next.push(moments ?? { first: tf.keep(tf.zerosLike(variable)), second: tf.keep(tf.zerosLike(variable)) });
          return;
        }
        const firstTerm = tf.mul(gradient, c.oneMinusBeta1);
        const secondTerm = tf.mul(tf.square(gradient), c.oneMinusBeta2);
        const first = moments === undefined ? firstTerm : tf.add(tf.mul(moments.first, c.beta1), firstTerm);
        const second = moments === undefined ? secondTerm : tf.add(tf.mul(moments.second, c.beta2), secondTerm);
        const correctedFirst = tf.div(first, oneMinusAccumulatedBeta1);
        const correctedSecond = tf.div(second, oneMinusAccumulatedBeta2);
        next.push({ first: tf.keep(first), second: tf.keep(second) });
        const newValue = tf.add(tf.mul(tf.div(correctedFirst, tf.add(tf.sqrt(correctedSecond), c.epsilon)), c.negativeLearningRate), variable);
        variable.assign(newValue);
      });
      const accumulatedBeta1: tf.Scalar = tf.keep(tf.mul(this.#accumulatedBeta1, c.beta1));
      const accumulatedBeta2: tf.Scalar = tf.keep(tf.mul(this.#accumulatedBeta2, c.beta2));
      tf.dispose([this.#accumulatedBeta1, this.#accumulatedBeta2]);
      this.#accumulatedBeta1 = accumulatedBeta1;
      this.#accumulatedBeta2 = accumulatedBeta2;
    });
    for (const moments of previous ?? []) {
      if (!next.includes(moments)) {
        tf.dispose([moments.first, moments.second]);
      }
    }
    this.#moments = next;
  }
}
