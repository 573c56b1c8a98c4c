# The chapter's notebook cells after its data split (plots, IPython and Colab lines
# left out), exactly as printed in the chapter. The test runs this file with the
# chapter's definitions taken from fastmlp or fastmlp.reference; NUM_EPOCHS and the
# data arrays come from the test.
model = NeuralNetMLP(num_features=28*28,
                     num_hidden=50,
                     num_classes=10)

num_epochs = 50
minibatch_size = 100

for i in range(num_epochs):
    minibatch_gen = minibatch_generator(
        X_train, y_train, minibatch_size)
    for X_train_mini, y_train_mini in minibatch_gen:
        break
    break
print(X_train_mini.shape)
print(y_train_mini.shape)

_, probas = model.forward(X_valid)
mse = mse_loss(y_valid, probas)
predicted_labels = np.argmax(probas, axis=1)
acc = accuracy(y_valid, predicted_labels)
print(f'Initial validation MSE: {mse:.1f}')
print(f'Initial validation accuracy: {acc*100:.1f}%')

mse, acc = compute_mse_and_acc(model, X_valid, y_valid)
print(f'Initial valid MSE: {mse:.1f}')
print(f'Initial valid accuracy: {acc*100:.1f}%')

np.random.seed(123) # for the training set shuffling
#model.reinitialize()
epoch_loss, epoch_train_acc, epoch_valid_acc = train(
    model, X_train, y_train, X_valid, y_valid,
    num_epochs=NUM_EPOCHS, learning_rate=0.1)

test_mse, test_acc = compute_mse_and_acc(model, X_test, y_test)
print(f'Test accuracy: {test_acc*100:.2f}%')

X_test_subset = X_test[:1000, :]
y_test_subset = y_test[:1000]
_, probas = model.forward(X_test_subset)
test_pred = np.argmax(probas, axis=1)
misclassified_images = X_test_subset[y_test_subset != test_pred][:25]
misclassified_labels = test_pred[y_test_subset != test_pred][:25]
correct_labels = y_test_subset[y_test_subset != test_pred][:25]
print(correct_labels, misclassified_labels)

tmp_indx = np.random.randint(len(X_test))
tmp_image = np.reshape(X_test[tmp_indx], (28, 28))
print("label is: ", y_test[tmp_indx])
rotated_image = np.rot90(tmp_image)
tmp_X = rotated_image.reshape(28*28,)
_, probas = model.forward(tmp_X)
rotated_pred = np.argmax(probas)
print("Predicted label is: ", rotated_pred)

model.reinitialize()
print(model.weight_h[0, :3])

model_relu = NeuralNetMLP_ReLU(num_features=28*28,
                               num_hidden=50,
                               num_classes=10)
np.random.seed(123) # for the training set shuffling
epoch_loss, epoch_train_acc, epoch_valid_acc = train(
    model_relu, X_train, y_train, X_valid, y_valid,
    num_epochs=NUM_EPOCHS, learning_rate=0.1)
test_mse, test_acc = compute_mse_and_acc(model_relu, X_test, y_test)
print(f'Test accuracy: {test_acc*100:.2f}%')
